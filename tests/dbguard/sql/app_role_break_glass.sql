-- As the application role: a refused DELETE, then the same under break-glass, committed.
\set ON_ERROR_STOP 0
DELETE FROM app_scratch;
\set ON_ERROR_STOP 1
BEGIN;
SET LOCAL datasafe.break_glass = 'app role test';
DELETE FROM app_scratch;
COMMIT;
