-- A real error in PostgreSQL's log: a query of a table that does not exist. psql's own
-- ON_ERROR_STOP makes the test see it fail; the server logs "ERROR: relation ... does not exist".
SELECT * FROM datasafe_test_marker_no_such_table;
