-- expect: mass-delete-over-limit
DELETE FROM test_results WHERE id > 0;
