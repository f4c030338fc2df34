-- break-glass test: a statement the guard refuses (a DELETE without WHERE), run on purpose
DELETE FROM continuous_probe;
