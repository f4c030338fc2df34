-- expect: drop-table
DROP TABLE invoices;
