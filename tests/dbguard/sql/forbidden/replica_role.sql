-- expect: truncate
SET session_replication_role = replica;
TRUNCATE invoices;
