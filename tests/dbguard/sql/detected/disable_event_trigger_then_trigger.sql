-- A superuser switches the event trigger off first; then disabling a table's trigger passes.
-- The next datasafe run must name both.
ALTER EVENT TRIGGER datasafe_guard_ddl DISABLE;
ALTER TABLE invoices DISABLE TRIGGER datasafe_guard_truncate;
