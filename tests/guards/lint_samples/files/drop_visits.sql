-- a "cleanup" script that really drops a table
DROP TABLE visits;
