-- expect: mass-delete-over-limit
WITH gone AS (DELETE FROM invoices WHERE 1 = 1 RETURNING id)
SELECT count(*) FROM gone;
