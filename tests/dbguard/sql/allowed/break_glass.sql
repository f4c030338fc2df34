-- break-glass with a reason: the refused DELETE runs and is audited
BEGIN;
SET LOCAL application_name = 'dbguard-test';
SET LOCAL datasafe.break_glass = 'retire the old ward list, ticket LAB-42';
DELETE FROM ward_beds;
COMMIT;
