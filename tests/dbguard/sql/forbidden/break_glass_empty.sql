-- expect: mass-delete-over-limit
BEGIN;
SET LOCAL datasafe.break_glass = '   ';
DELETE FROM invoices;
COMMIT;
