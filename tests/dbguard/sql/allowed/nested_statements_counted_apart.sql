-- 600 rows in one UPDATE whose WHERE clause calls a function that updates another row of the same
-- table each time (600 one-row statements inside it): the outer statement changed 600 rows, under
-- the limit of 1,000, and is not charged the inner statements' rows (1,200 together)
BEGIN;
CREATE FUNCTION touch_last_result() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    UPDATE test_results SET flag = flag WHERE id = 1;
    RETURN true;
END
$$;
UPDATE test_results SET flag = flag WHERE id BETWEEN 2 AND 601 AND touch_last_result();
DROP FUNCTION touch_last_result();
COMMIT;
