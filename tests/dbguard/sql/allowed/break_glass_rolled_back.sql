-- break-glass in a transaction that is rolled back: no rows lost, no audit row
BEGIN;
SET LOCAL datasafe.break_glass = 'trying something';
DELETE FROM invoices;
ROLLBACK;
