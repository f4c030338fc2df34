-- What real systems accumulate, for the server-loss tests (tests/recovery): loaded on top of the
-- LMS schema of a throwaway server by its owner (the bootstrap superuser). Every object here must
-- come back identical on a fresh server restored from the off-site copy.
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE EXTENSION IF NOT EXISTS citext;

-- A second role with grants (and a login, whose password hash travels in the roles file), a
-- group role it is a member of, and a role name that needs quoting.
CREATE ROLE lab_readers NOLOGIN;
CREATE ROLE lab_reporter LOGIN PASSWORD 'reporter-test-password' CONNECTION LIMIT 5;
ALTER ROLE lab_reporter SET statement_timeout = '30s';
COMMENT ON ROLE lab_reporter IS 'read-only reporting login';
GRANT lab_readers TO lab_reporter;
CREATE ROLE "Lab Auditor" NOLOGIN;

CREATE SCHEMA lab;
GRANT USAGE ON SCHEMA lab TO lab_readers;

CREATE TYPE lab.sample_state AS ENUM ('received', 'analysed', 'reported', 'déjà vu');
CREATE DOMAIN lab.positive_ml AS numeric(8, 2) CHECK (VALUE > 0);

CREATE TABLE lab.samples (
    id bigint GENERATED ALWAYS AS IDENTITY (START WITH 900000001) PRIMARY KEY,
    code citext NOT NULL UNIQUE,
    state lab.sample_state NOT NULL DEFAULT 'received',
    volume lab.positive_ml NOT NULL,
    volume_l numeric GENERATED ALWAYS AS (volume / 1000) STORED,
    note text,
    token bytea NOT NULL DEFAULT gen_random_bytes(8),
    updated_at timestamptz NOT NULL DEFAULT '2026-01-01 00:00:00+00'
);

CREATE TABLE lab.readings (
    sample_id bigint NOT NULL REFERENCES lab.samples (id),
    taken_on date NOT NULL,
    value double precision NOT NULL
) PARTITION BY RANGE (taken_on);
CREATE TABLE lab.readings_2025 PARTITION OF lab.readings FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE lab.readings_2026 PARTITION OF lab.readings FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');

CREATE TABLE lab."Audit Trail ""v2""" (
    id serial PRIMARY KEY,
    what text NOT NULL,
    by_role text NOT NULL DEFAULT 'lab'
);

CREATE SEQUENCE lab.report_number START WITH 7000000000 INCREMENT BY 7;

CREATE FUNCTION lab.audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO lab."Audit Trail ""v2""" (what) VALUES (TG_OP || ' ' || NEW.code);
    RETURN NEW;
END $$;
CREATE TRIGGER samples_audit AFTER INSERT OR UPDATE ON lab.samples FOR EACH ROW EXECUTE FUNCTION lab.audit();

CREATE VIEW lab.sample_totals AS
    SELECT s.state, count(*) AS n, sum(s.volume) AS volume FROM lab.samples s GROUP BY s.state;
CREATE MATERIALIZED VIEW lab.reading_stats AS
    SELECT sample_id, count(*) AS n, avg(value) AS mean FROM lab.readings GROUP BY sample_id;

GRANT SELECT ON lab.samples, lab.readings, lab.sample_totals, lab.reading_stats TO lab_readers;
GRANT SELECT, INSERT ON lab."Audit Trail ""v2""" TO "Lab Auditor";
GRANT USAGE ON SEQUENCE lab.report_number TO lab_reporter;
ALTER TABLE lab."Audit Trail ""v2""" OWNER TO "Lab Auditor";

INSERT INTO lab.samples (code, state, volume, note)
SELECT 'S-' || g, (ARRAY['received', 'analysed', 'reported', 'déjà vu']::lab.sample_state[])[1 + g % 4],
       (g % 97) + 0.5, 'Probe Nr. ' || g || ' – Müller, Øresund, 東京, Ελλάδα'
FROM generate_series(1, 300) AS g;
UPDATE lab.samples SET state = 'reported' WHERE id % 10 = 0;
INSERT INTO lab.readings (sample_id, taken_on, value)
SELECT 900000000 + (g % 300) + 1, DATE '2025-06-01' + (g % 400), g * 0.25 FROM generate_series(1, 900) AS g;
REFRESH MATERIALIZED VIEW lab.reading_stats;
SELECT setval('lab.report_number', 7000004242);
SELECT nextval('lab.report_number');

-- A large object with non-ASCII content, owned by the second role.
SELECT lo_from_bytea(424242, convert_to('Befund – größer als erwartet: 東京 ✓', 'UTF8'));
ALTER LARGE OBJECT 424242 OWNER TO lab_reporter;
GRANT SELECT ON LARGE OBJECT 424242 TO lab_readers;
