-- Whether sql/migration_42.sql's table exists yet (prints "does not exist" when not).
\pset format unaligned
\pset tuples_only on
SELECT CASE WHEN to_regclass('datasafe_test_migration_42') IS NULL THEN 'does not exist' ELSE 'exists' END;
