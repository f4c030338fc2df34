-- expect: mass-update-over-limit
-- 5,000 rows in one UPDATE whose WHERE clause calls a function that updates another row of the same
-- table: each call is a statement of its own inside the outer one, at the same trigger depth, and
-- must not hide the outer statement's rows
BEGIN;
CREATE FUNCTION touch_first_result() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    UPDATE test_results SET flag = flag WHERE id = 1;
    RETURN true;
END
$$;
UPDATE test_results SET flag = 'normal' WHERE id BETWEEN 2 AND 5001 AND touch_first_result();
COMMIT;
