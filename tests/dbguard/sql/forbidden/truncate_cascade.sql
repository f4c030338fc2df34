-- expect: truncate
TRUNCATE TABLE visits, test_results, invoices RESTART IDENTITY CASCADE;
