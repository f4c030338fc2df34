-- The benchmark's mistake: a wrong WHERE deletes the results of one visit in 500 (a few thousand rows).
WITH gone AS (DELETE FROM test_results WHERE visit_id IN (SELECT id FROM visits WHERE id % 500 = 7) RETURNING 1)
SELECT count(*) FROM gone;
