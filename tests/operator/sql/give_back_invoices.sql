-- Put back the invoices sql/hold_back_invoices.sql held back (a throwaway test database only).
BEGIN;
INSERT INTO invoices SELECT * FROM datasafe_test_held_invoices;
DROP TABLE datasafe_test_held_invoices;
COMMIT;
