-- expect: mass-delete-over-limit
MERGE INTO invoices i USING (SELECT 1 AS one) s ON true WHEN MATCHED THEN DELETE;
