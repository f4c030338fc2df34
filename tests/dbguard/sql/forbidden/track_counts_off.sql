-- expect: guard-cannot-count
-- with track_counts off the guard cannot count the rows of a statement: it refuses, never guesses
SET track_counts = off;
DELETE FROM ward_beds WHERE id = 3;
