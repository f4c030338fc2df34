-- Written after the logical backup and before the mistake: only the WAL archive sees these.
INSERT INTO results (id, visit_id, test, value) SELECT 1000 + g, 195, 'window', g FROM generate_series(1, 5) g;
