-- expect: mass-update-all-rows
-- a release's migration file, run with psql -f: the new column is rolled back with the refusal
BEGIN;
ALTER TABLE users ADD COLUMN must_change_password boolean;
UPDATE users SET email = lower(email);
COMMIT;
