-- expect: drop-column
ALTER TABLE patients DROP COLUMN medical_notes;
