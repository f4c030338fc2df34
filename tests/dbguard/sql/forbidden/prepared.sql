-- expect: mass-delete-over-limit
PREPARE wipe (bigint) AS DELETE FROM invoices WHERE id > $1;
EXECUTE wipe(0);
