"""The data directory's facts (PG_VERSION, inode, system identifier), read from a real PostgreSQL
container in one docker exec, equal what the separate commands read."""

import pytest
from ansible.module_utils.datasafe import stack
from pgbed import ThrowawayPostgres, docker


@pytest.fixture(scope="module")
def pg():
    db = ThrowawayPostgres()
    try:
        db.start()
        yield db
    finally:
        db.remove()


def counted(run, calls):
    def wrapper(argv, data=None):
        calls.append(argv)
        return run(argv, data=data)

    return wrapper


def test_one_exec_reads_what_three_did(pg):
    calls = []
    facts, problems = stack.data_facts(counted(pg.run, calls), pg.container)
    assert problems == [] and len(calls) == 1
    inode = docker("exec", pg.container, "stat", "-c", "%i", stack.PGDATA).stdout.strip()
    control = docker("exec", pg.container, "pg_controldata", stack.PGDATA).stdout
    ident = next(line.split(":", 1)[1].strip() for line in control.splitlines() if "system identifier" in line)
    version = docker("exec", pg.container, "cat", stack.PGDATA + "/PG_VERSION").stdout.strip()
    assert facts == {"pg_version": version, "data_inode": int(inode), "system_identifier": ident}
    assert version == "15" and ident.isdigit()


def test_what_cannot_be_read_is_a_problem_not_a_guess(pg):
    facts, problems = stack.data_facts(pg.run, pg.container, "/nonexistent/data")
    assert facts == {"pg_version": None} and problems[0].startswith("cannot stat /nonexistent/data in ")
    # a directory that is no cluster: its inode is read, its identifier is not
    facts, problems = stack.data_facts(pg.run, pg.container, "/tmp")
    assert set(facts) == {"pg_version", "data_inode"} and facts["pg_version"] is None
    assert problems[0].startswith("cannot read the cluster's system identifier in %s" % pg.container)
    facts, problems = stack.data_facts(pg.run, "dstest-no-such-container")
    assert facts == {"pg_version": None} and "No such container" in problems[0]
