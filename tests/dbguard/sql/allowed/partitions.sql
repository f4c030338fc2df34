-- partitioned tables: a new one and its partitions are guarded, writes pass
CREATE TABLE sample_log (id int, taken date) PARTITION BY RANGE (taken);
CREATE TABLE sample_log_2026 PARTITION OF sample_log FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO sample_log SELECT g, date '2026-01-01' + g FROM generate_series(0, 99) g;
UPDATE sample_log SET id = id WHERE id < 10;
DELETE FROM sample_log_2026 WHERE id = 99;
