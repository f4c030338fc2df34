-- expect: drop-guard
DROP TRIGGER datasafe_guard_truncate ON invoices;
