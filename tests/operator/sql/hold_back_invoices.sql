-- Lose three invoices behind datasafe's back (a throwaway test database only): they are moved
-- into a holding table, so sql/give_back_invoices.sql can put them back.
BEGIN;
CREATE TABLE datasafe_test_held_invoices AS
  SELECT * FROM invoices ORDER BY id DESC LIMIT 3;
DELETE FROM invoices WHERE id IN (SELECT id FROM datasafe_test_held_invoices);
COMMIT;
