-- one transaction of 1,200 one-row UPDATEs and DELETEs of the same table: each statement is
-- judged alone (more rows than the limit in all, never in one statement)
BEGIN;
DO $$
BEGIN
    FOR i IN 1..1200 LOOP
        UPDATE test_results SET flag = flag WHERE id = i;
    END LOOP;
END
$$;
INSERT INTO patients (mrn, full_name, date_of_birth, sex)
    SELECT 'MANY-' || g, 'Many ' || g, '1990-01-01', 'F' FROM generate_series(1, 3) g;
DELETE FROM patients WHERE mrn = 'MANY-1';
DELETE FROM patients WHERE mrn = 'MANY-2';
DELETE FROM patients WHERE mrn IN ('MANY-3', 'no such mrn');
COMMIT;
