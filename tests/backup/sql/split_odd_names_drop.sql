-- Removes what split_odd_names.sql made (a throwaway database's test schema).
DROP SCHEMA "Odd.Schema" CASCADE;
