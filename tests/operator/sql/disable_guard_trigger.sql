-- Tamper with the guard inside PostgreSQL (a throwaway test database only), as a superuser
-- working around it would: its DDL event trigger off first, then one table's trigger; status.yml
-- must show the guard red, naming both.
ALTER EVENT TRIGGER datasafe_guard_ddl DISABLE;
ALTER TABLE invoices DISABLE TRIGGER datasafe_guard_truncate;
