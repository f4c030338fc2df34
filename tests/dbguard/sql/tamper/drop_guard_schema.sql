-- expect: drop-guard
DROP SCHEMA datasafe CASCADE;
