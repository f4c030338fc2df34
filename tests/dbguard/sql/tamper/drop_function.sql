-- expect: drop-guard
DROP FUNCTION datasafe.guard_mass_change() CASCADE;
