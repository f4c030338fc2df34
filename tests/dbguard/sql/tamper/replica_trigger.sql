-- expect: disable-guard
ALTER TABLE invoices ENABLE REPLICA TRIGGER datasafe_guard_delete;
