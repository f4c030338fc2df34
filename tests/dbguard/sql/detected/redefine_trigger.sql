-- A superuser switches the drop guard off, replaces a guard trigger by one that never fires on
-- DELETE, and switches the drop guard on again: every event trigger and function is intact.
ALTER EVENT TRIGGER datasafe_guard_drop DISABLE;
DROP TRIGGER datasafe_guard_delete ON invoices;
CREATE TRIGGER datasafe_guard_delete AFTER INSERT ON invoices
    FOR EACH STATEMENT EXECUTE FUNCTION datasafe.guard_mass_change();
ALTER TABLE invoices ENABLE ALWAYS TRIGGER datasafe_guard_delete;
ALTER EVENT TRIGGER datasafe_guard_drop ENABLE ALWAYS;
