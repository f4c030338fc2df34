"""safe_sql's engine (module_utils/datasafe/psql.py) on recorded psql runs: the marker protocol,
honest ``changed``, and check mode. The real runs against PostgreSQL are in
tests/guards/test_modules_integration.py."""

import pytest
from ansible.module_utils.datasafe import psql

SELECT = dict(statement="SELECT id FROM users WHERE id = 1", type="SelectStmt", read_only=True, transactional=True)
UPDATE = dict(
    statement="UPDATE users SET name = 'x' WHERE id = 1", type="UpdateStmt", read_only=False, transactional=True
)
VACUUM = dict(statement="VACUUM users", type="VacuumStmt", read_only=False, transactional=False)


class Psql:
    """Answers like psql: each statement's output between the markers of the script it is given,
    stopping with exit 3 at statement ``fail_at``."""

    def __init__(self, outputs, fail_at=None):
        self.outputs, self.fail_at, self.scripts = outputs, fail_at, []

    def __call__(self, argv, data=None):
        assert argv[:2] == ["docker", "exec"] and "psql" in argv and "ON_ERROR_STOP=1" in argv
        self.scripts.append(data)
        lines = []
        for line in [line for line in data.splitlines() if line.startswith("\\echo")]:
            _, marker, where, n = line.split()[:4]
            index = int(n)
            if where == "start":
                lines.append("%s start %d" % (marker, index))
                if index == self.fail_at:
                    return 3, "\n".join(lines) + "\n", "ERROR:  permission denied for table users\n"
                lines += self.outputs[index][1]
            else:
                lines.append("%s end %d %s" % (marker, index, self.outputs[index][0]))
        return 0, "\n".join(lines) + "\n", ""


def execute(run, kinds, check_mode=False, single_transaction=True):
    return psql.execute(run, "lms-postgres", "lms", "lms_user", kinds, single_transaction, check_mode)


def test_each_statement_gets_its_row_count_and_rows_and_changed_is_honest():
    run = Psql([("1", ["id", "1"]), ("1", [])])
    result = execute(run, [SELECT, UPDATE])
    assert [s["row_count"] for s in result["statements"]] == [1, 1]
    assert result["statements"][0]["rows"] == [{"id": "1"}]
    assert result["rows_affected"] == 1 and result["changed"] and result["transaction"] == "commit"
    assert run.scripts[0].startswith("BEGIN;") and run.scripts[0].rstrip().endswith("COMMIT;")
    nothing = execute(Psql([("0", [])]), [UPDATE])
    assert not nothing["changed"]  # an UPDATE that matched no row changed nothing


def test_check_mode_rolls_back_and_runs_nothing_it_cannot_roll_back():
    run = Psql([("1", [])])
    result = execute(run, [UPDATE], check_mode=True)
    assert result["transaction"] == "rollback" and run.scripts[0].rstrip().endswith("ROLLBACK;")
    never = Psql([])
    skipped = execute(never, [VACUUM], check_mode=True)
    assert never.scripts == [] and not skipped["executed"] and skipped["changed"]


def test_a_failure_names_the_statement_and_a_wrapped_failure_changed_nothing():
    with pytest.raises(psql.StatementFailed) as failed:
        execute(Psql([("1", ["id", "1"]), ("1", [])], fail_at=1), [SELECT, UPDATE])
    assert "at statement 2 of 2" in str(failed.value) and "permission denied" in str(failed.value)
    assert failed.value.result["failed_statement"] == UPDATE["statement"] and failed.value.result["rc"] == 3
    assert failed.value.result["changed"] is False
    with pytest.raises(psql.StatementFailed) as unwrapped:
        execute(Psql([("1", []), ("1", [])], fail_at=1), [UPDATE, UPDATE], single_transaction=False)
    assert unwrapped.value.result["changed"] is True  # the first UPDATE stays done without a transaction


def test_no_statements_runs_nothing():
    never = Psql([])
    assert execute(never, []) == {"changed": False, "executed": False, "msg": "no SQL statements to run"}
    assert never.scripts == []
