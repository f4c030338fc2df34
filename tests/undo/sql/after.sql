-- The day goes on: new visits and results, a visit the bug touched is closed on purpose, a result
-- id the mistake freed is used again, an untouched result is corrected, the shape probe grows.
INSERT INTO visits (patient_id, status) SELECT 1, 'open' FROM generate_series(1, 20) g;
INSERT INTO results (visit_id, test, value) SELECT 200 + g, 'after', g FROM generate_series(1, 20) g;
UPDATE visits SET status = 'closed' WHERE id = 105;
INSERT INTO results (id, visit_id, test, value) VALUES (381, 1, 'reused key', 7);
UPDATE results SET value = 99 WHERE id = 3;
INSERT INTO staff_notes (body) VALUES ('written after the mistake');
ALTER TABLE shape_probe ADD COLUMN w int;
