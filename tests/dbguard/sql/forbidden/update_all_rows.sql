-- expect: mass-update-all-rows
UPDATE users SET role = 'admin';
