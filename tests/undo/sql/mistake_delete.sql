-- The wrong WHERE (meant for a test database): under the guard's row limit, so it is let through.
BEGIN;
DELETE FROM results WHERE visit_id > 190;
DELETE FROM visits WHERE id > 190;
SELECT txid_current();
COMMIT;
