-- expect: mass-update-over-limit
UpDaTe test_results SET flag = 'normal' WHERE id <= 5000; -- a 'small' fix
