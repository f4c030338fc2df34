-- expect: drop-owned
DROP OWNED BY lab_import;
