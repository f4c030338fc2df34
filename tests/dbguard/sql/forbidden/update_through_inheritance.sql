-- expect: mass-update-over-limit
-- lab_remarks holds one row itself and 1,500 in its child table lab_remarks_2025: one UPDATE of the
-- parent overwrites them all (its own counter alone would say one row)
UPDATE lab_remarks SET note = 'overwritten' WHERE id > 0;
