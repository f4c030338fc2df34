-- expect: mass-delete-over-limit
-- a table that gains a child table after the guard was installed is counted through it: a DELETE
-- of the parent that reaches 1,101 of the child's rows is refused (the whole transaction with it)
BEGIN;
CREATE TABLE ward_beds_history () INHERITS (ward_beds);
INSERT INTO ward_beds_history SELECT g, 'closed ward' FROM generate_series(100, 1200) g;
DELETE FROM ward_beds WHERE id >= 100;
COMMIT;
