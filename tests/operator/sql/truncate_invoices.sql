-- A migration the SQL guard must refuse: change.yml's one-shot mode never runs it (a throwaway
-- test database only, and the test asserts every invoice is still there).
TRUNCATE invoices;
