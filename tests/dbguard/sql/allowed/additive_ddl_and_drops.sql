-- additive DDL, and drops that lose no rows: index, view, function
CREATE TABLE lab_notes (id bigserial PRIMARY KEY, note text);
INSERT INTO lab_notes (note) VALUES ('a'), ('b'), ('c');
DELETE FROM lab_notes WHERE id = 1;
ALTER TABLE lab_notes ADD COLUMN author text;
DROP INDEX invoices_issued_at_idx;
DROP VIEW recent_visits;
DROP FUNCTION visit_count();
VACUUM ANALYZE ward_beds;
