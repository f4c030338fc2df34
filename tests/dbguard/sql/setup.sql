-- Objects the dbguard tests need besides the LMS schema (created before the guard is installed).
CREATE TABLE ward_beds (id int PRIMARY KEY, ward text NOT NULL);
INSERT INTO ward_beds VALUES (1, 'A'), (2, 'A'), (3, 'B');
CREATE MATERIALIZED VIEW visit_summary AS SELECT status, count(*) AS n FROM visits GROUP BY status;
CREATE VIEW recent_visits AS SELECT * FROM visits WHERE visited_at > now() - interval '30 days';
CREATE INDEX invoices_issued_at_idx ON invoices (issued_at);
CREATE FUNCTION visit_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM visits';
CREATE ROLE lab_import NOLOGIN;
CREATE TABLE import_log (id int PRIMARY KEY, line text);
INSERT INTO import_log VALUES (1, 'first'), (2, 'second');
ALTER TABLE import_log OWNER TO lab_import;
-- An application role that is not a superuser and owns nothing: the guard must work for it too.
CREATE TABLE app_scratch (id int PRIMARY KEY);
INSERT INTO app_scratch VALUES (1), (2), (3);
CREATE ROLE lab_app LOGIN;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO lab_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO lab_app;
-- A table with an inheritance child: one row of its own, 1,500 in the child. A statement on the
-- parent changes the child's rows too; the guard must count them (through a transition table).
CREATE TABLE lab_remarks (id int, note text);
CREATE TABLE lab_remarks_2025 () INHERITS (lab_remarks);
INSERT INTO lab_remarks VALUES (1, 'own row');
INSERT INTO lab_remarks_2025 SELECT g, 'archived note' FROM generate_series(2, 1501) g;
