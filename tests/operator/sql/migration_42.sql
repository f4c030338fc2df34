-- A harmless migration for change.yml's one-shot mode: a table of its own and one row.
CREATE TABLE IF NOT EXISTS datasafe_test_migration_42 (id integer PRIMARY KEY, note text NOT NULL);
INSERT INTO datasafe_test_migration_42 (id, note) VALUES (42, 'migrated') ON CONFLICT (id) DO NOTHING;
