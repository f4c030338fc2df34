-- An application bug overwrites a column on 30 visits.
BEGIN;
UPDATE visits SET status = 'cancelled', note = NULL WHERE id BETWEEN 101 AND 130;
SELECT txid_current();
COMMIT;
