-- An LMS-like application workload for pgbench (-f): every statement touches one row or a
-- few, as the application does; with the guard on, every transaction must succeed.
\set pid random(1, 2000)
\set iid random(1, 6000)
BEGIN;
SELECT id, mrn, full_name FROM patients WHERE id = :pid;
INSERT INTO visits (patient_id, registered_by, visit_code, visited_at, status)
  VALUES (:pid, 1, 'WL-' || md5(random()::text), now(), 'registered') RETURNING id AS vid \gset
INSERT INTO test_results (visit_id, test_code, test_name, result_value) VALUES (:vid, 'HB', 'Hemoglobin', '13.5');
INSERT INTO test_results (visit_id, test_code, test_name, result_value) VALUES (:vid, 'WBC', 'White cells', '7.1');
UPDATE visits SET status = 'collected' WHERE id = :vid;
UPDATE test_results SET flag = 'normal' WHERE visit_id = :vid;
UPDATE invoices SET paid_cents = paid_cents WHERE id = :iid;
DELETE FROM test_results WHERE visit_id = :vid AND test_code = 'WBC';
COMMIT;
