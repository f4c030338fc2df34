-- expect: disable-guard
ALTER TABLE invoices DISABLE TRIGGER datasafe_guard_truncate;
