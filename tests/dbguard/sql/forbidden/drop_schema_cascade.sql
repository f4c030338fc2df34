-- expect: drop-schema|drop-table|drop-guard
DROP SCHEMA public CASCADE;
