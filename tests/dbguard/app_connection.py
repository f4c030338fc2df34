"""The demo backend's own way of talking to PostgreSQL (pg8000 over TCP, as lms_backend.app does),
run by the tests with the backend's wheels on sys.path: argv host port db user sql-file.
Prints the server's error message and exits 3 when the statement is refused."""

import sys

import pg8000.native

host, port, db, user, path = sys.argv[1:6]
with open(path, encoding="utf-8") as handle:
    sql = handle.read()
conn = pg8000.native.Connection(user, host=host, port=int(port), database=db, password=sys.stdin.read().strip())
try:
    conn.run(sql)
except pg8000.native.DatabaseError as exc:
    print(exc.args[0].get("M", str(exc)) if isinstance(exc.args[0], dict) else str(exc))
    sys.exit(3)
finally:
    conn.close()
print("ok")
