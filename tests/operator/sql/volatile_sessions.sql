-- A table the application refills itself (adopt must not guess it critical).
CREATE TABLE IF NOT EXISTS sessions (id text PRIMARY KEY, user_id integer, expires timestamptz NOT NULL);
INSERT INTO sessions VALUES ('s1', 1, now() + interval '1 hour') ON CONFLICT DO NOTHING;
