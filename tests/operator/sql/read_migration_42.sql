-- What sql/migration_42.sql left behind (unaligned, tuples only).
\pset format unaligned
\pset tuples_only on
SELECT id, note FROM datasafe_test_migration_42;
