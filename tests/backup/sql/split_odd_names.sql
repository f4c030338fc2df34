-- Tables whose names need every quoting rule of pg_dump's patterns (test_backup_integration.py).
CREATE SCHEMA "Odd.Schema";
CREATE TABLE "Odd.Schema"."Big ""T"" *.x" (id int PRIMARY KEY, note text);
INSERT INTO "Odd.Schema"."Big ""T"" *.x" SELECT g, 'row ' || g FROM generate_series(1, 3) AS g;
-- what the pattern would also match if its * were a wildcard
CREATE TABLE "Odd.Schema"."Big ""T"" zz.x" (id int PRIMARY KEY, note text);
INSERT INTO "Odd.Schema"."Big ""T"" zz.x" SELECT g, 'other ' || g FROM generate_series(1, 3) AS g;
