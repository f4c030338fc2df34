-- ordinary writes: one row at a time, a small batch
BEGIN;
INSERT INTO patients (mrn, full_name, date_of_birth, sex) VALUES ('T-1', 'Test One', '1980-01-01', 'F'),
                                                                 ('T-2', 'Test Two', '1981-02-02', 'M');
UPDATE patients SET phone = '555-0100' WHERE mrn = 'T-1';
UPDATE visits SET status = 'collected' WHERE id IN (1, 2, 3);
DELETE FROM patients WHERE mrn IN ('T-1', 'T-2');
UPDATE test_results SET flag = 'normal' WHERE id <= 500;
COMMIT;
