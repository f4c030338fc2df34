-- a table created in the same transaction may be emptied and dropped
BEGIN;
CREATE TABLE import_batch (id int);
INSERT INTO import_batch SELECT generate_series(1, 5000);
DELETE FROM import_batch WHERE id > 10;
UPDATE import_batch SET id = id + 1;
TRUNCATE import_batch;
DROP TABLE import_batch;
CREATE SCHEMA staging_tmp;
DROP SCHEMA staging_tmp;
COMMIT;
