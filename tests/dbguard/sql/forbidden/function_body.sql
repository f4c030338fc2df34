-- expect: mass-delete-over-limit
BEGIN;
CREATE FUNCTION archive_invoices() RETURNS void LANGUAGE sql AS 'DELETE FROM invoices';
SELECT archive_invoices();
COMMIT;
