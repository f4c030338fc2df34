-- expect: mass-delete-all-rows
-- ward_beds holds 3 rows: one statement deleting all of them is refused, however few
DELETE FROM ward_beds;
