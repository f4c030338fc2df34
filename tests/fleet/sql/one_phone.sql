-- An ordinary migration: one row, allowed.
UPDATE patients SET phone = '555-0102' WHERE id = 2;
