-- expect: truncate
TRUNCATE invoices;
