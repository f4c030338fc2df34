DELETE FROM test_results WHERE id > 0
