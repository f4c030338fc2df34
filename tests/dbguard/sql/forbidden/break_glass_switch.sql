-- expect: truncate
BEGIN;
SET LOCAL datasafe.break_glass = 'on';
TRUNCATE invoices;
COMMIT;
