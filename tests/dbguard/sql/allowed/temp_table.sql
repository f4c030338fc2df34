-- temporary tables are not guarded
CREATE TEMP TABLE scratch AS SELECT * FROM invoices;
DELETE FROM scratch;
TRUNCATE scratch;
DROP TABLE scratch;
