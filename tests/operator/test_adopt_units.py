"""Pure logic of adopt (module_utils/datasafe/adopt.py): compose v1/v2 project names, the facts
read from docker inspect data, the critical-table guess, the cron line, the script's pruning,
and host_vars never written over the operator's file. The real runs are in test_adopt.py."""

import json
import subprocess

import pytest
from ansible.module_utils.datasafe import adopt
from harness import run_module


def inspect(
    name, project, service, mounts, env=(), version="2.29.7", image="postgres:15", workdir="/srv/LMS-SLNCity-V1"
):
    return {
        "Name": "/" + name,
        "Config": {
            "Image": image,
            "Env": list(env),
            "Labels": {
                "com.docker.compose.project": project,
                "com.docker.compose.service": service,
                "com.docker.compose.version": version,
                "com.docker.compose.project.working_dir": workdir,
                "com.docker.compose.project.config_files": workdir + "/docker-compose.prod.yml",
            },
            "Healthcheck": {"Test": ["CMD-SHELL", "curl -fsS http://localhost:5002/health || exit 1"]},
        },
        "Mounts": mounts,
    }


PG_VOLUME = {"Type": "volume", "Name": "lmsslncityv1_postgres_data", "Destination": "/var/lib/postgresql/data"}


def test_compose_v1_and_v2_derive_different_project_names_and_the_label_wins():
    assert adopt.v1_project_name("/home/lab/LMS-SLNCity-V1") == "lms-slncity-v1"
    assert adopt.v2_project_name("/home/lab/_LMS.SLNCity V1") == "lmsslncityv1"
    db = inspect(
        "lms-postgres",
        "lmsslncityv1",  # what an old docker-compose v1 recorded
        "postgres",
        [PG_VOLUME],
        env=["POSTGRES_DB=lms_slncity", "POSTGRES_USER=lms_user", "POSTGRES_PASSWORD=secret"],
        version="1.25.0",
    )
    backend = inspect("lms-backend", "lmsslncityv1", "backend", [], image="lms-backend")
    found = adopt.deployment_facts(db, [db, backend], {"com.docker.compose.volume": "postgres_data"})
    facts = found["facts"]
    assert facts["datasafe_compose_project"] == "lmsslncityv1"  # never the name v2 would derive
    assert facts["datasafe_db_volume"] == "postgres_data" and found["volume"] == "lmsslncityv1_postgres_data"
    assert facts["datasafe_compose_dir"] == "/srv/LMS-SLNCity-V1"
    assert facts["datasafe_compose_files"] == ["docker-compose.prod.yml"]
    assert (facts["datasafe_db_name"], facts["datasafe_db_user"]) == ("lms_slncity", "lms_user")
    assert facts["datasafe_health_url"] == "http://localhost:5002/health"
    assert "secret" not in json.dumps(found)  # the password is never read
    notes = " ".join(found["notes"])
    assert "docker-compose v1 (1.25.0)" in notes and "not 'lms-slncity-v1'" in notes


def test_data_not_on_a_named_volume_is_refused():
    bind = {"Type": "bind", "Source": "/srv/pgdata", "Destination": "/var/lib/postgresql/data"}
    with pytest.raises(adopt.AdoptError, match="in the bind mount /srv/pgdata, not on a named volume"):
        adopt.deployment_facts(inspect("db", "p", "postgres", [bind]), [], {})
    anon = dict(PG_VOLUME, Name="a" * 64)
    with pytest.raises(adopt.AdoptError, match="anonymous volume"):
        adopt.deployment_facts(inspect("db", "p", "postgres", [anon]), [], {})


def test_several_databases_are_never_guessed_between():
    infos = [inspect("a-pg", "a", "postgres", [PG_VOLUME]), inspect("b-pg", "b", "postgres", [PG_VOLUME])]

    def run(argv, **_):
        return 0, (" ".join(["x"] * len(infos)) if argv[1] == "ps" else json.dumps(infos)), ""

    with pytest.raises(
        adopt.AdoptError, match=r"2 PostgreSQL containers run \(a-pg \(project a\), b-pg \(project b\)\)"
    ):
        adopt.find_database(run)
    db, siblings = adopt.find_database(run, project="b")
    assert db["Name"] == "/b-pg" and siblings == [infos[1]]


def test_the_critical_guess_leaves_out_what_the_application_refills():
    rows = [["invoices", "120", "0"], ["patients", "50", "2"], ["sessions", "9", "0"], ["knex_migrations", "3", "0"]]
    rows += [["datasafe_test_x", "1", "0"], ["audit_log", "7", "0"]]
    guess = {t["name"]: t["critical"] for t in adopt.guess_critical(rows)}
    assert guess == {
        "invoices": True,
        "patients": True,
        "sessions": False,
        "knex_migrations": False,
        "datasafe_test_x": False,
        "audit_log": False,
    }


def test_the_old_cron_line_is_kept_commented_and_nothing_else_changes():
    text = "MAILTO=root\n0 2 * * * ~/backup-database.sh >> ~/backup.log 2>&1\n# 0 3 * * * ~/backup-database.sh\n"
    text += "0 2 * * * /opt/datasafe/bin/datasafe-backup-job --job backup  # backup-database.sh\n"
    new, retired = adopt.retire_cron_lines(text, r"backup-database\.sh")
    assert retired == ["0 2 * * * ~/backup-database.sh >> ~/backup.log 2>&1"]
    lines = new.splitlines()
    assert lines[0] == "MAILTO=root" and lines[2:] == text.splitlines()[2:]
    assert lines[1] == adopt.CRON_MARK + retired[0]
    assert adopt.retire_cron_lines(new, r"backup-database\.sh")[1] == []  # idempotent
    assert adopt.script_of(retired[0], r"backup-database\.sh", "/home/lab") == "/home/lab/backup-database.sh"


def test_pruning_becomes_a_no_op_and_the_script_stays_valid_shell(tmp_path):
    with open("tests/operator/adopt/backup-database.sh") as handle:
        script = handle.read()
    new, disabled, manual = adopt.disable_pruning(script)
    assert len(disabled) == 2 and manual == []
    path = tmp_path / "s.sh"
    path.write_text(new)
    assert subprocess.run(["bash", "-n", str(path)], check=False).returncode == 0
    assert adopt.disable_pruning(new)[1] == []  # idempotent
    continued = "find ~/backups -mtime +7 \\\n  -delete\n"
    assert adopt.disable_pruning(continued)[2] == continued.splitlines()  # reported, not edited
    assert adopt.disable_pruning(continued)[0] == continued


def test_host_vars_are_never_written_over_the_operators_file(tmp_path):
    path = tmp_path / "localhost.yml"
    text = adopt.render_host_vars({"datasafe_db_name": "lms", "datasafe_critical_tables": ["users"]}, ["read"])
    assert adopt.plan_host_vars(str(path), text)["action"] == "create"
    adopt.write_host_vars(str(path), text)
    assert oct(path.stat().st_mode & 0o777) == "0o600" and adopt.written_by_adopt(path.read_text())
    assert adopt.plan_host_vars(str(path), text)["action"] == "unchanged"
    newer = adopt.render_host_vars({"datasafe_db_name": "lms2", "datasafe_critical_tables": ["users"]}, ["read"])
    assert adopt.plan_host_vars(str(path), newer)["action"] == "replace"  # adopt's own, unedited
    path.write_text(text.replace('"users"', '"users"\n  - "visits"'))  # the operator edits it
    plan = adopt.plan_host_vars(str(path), newer)
    assert plan["action"] == "refuse" and '-  - "visits"' in plan["diff"]
    path.write_text("datasafe_db_name: mine\n")  # the operator's own file
    assert adopt.plan_host_vars(str(path), text)["action"] == "refuse"


def test_the_module_writes_replaces_and_refuses_as_planned(tmp_path):
    """adopt_host_vars through its engine (adopt.host_vars_task): check mode writes nothing, the
    diff is shown, and the operator's file is refused with the difference and left as it was."""
    path = tmp_path / "host_vars" / "lab.yml"
    args = dict(path=str(path), variables={"datasafe_db_name": "lms"}, comments=["read from lms-postgres"])
    text = adopt.render_host_vars(args["variables"], args["comments"])

    planned = run_module("adopt_host_vars", args, check_mode=True)
    assert (planned["failed"], planned["changed"], planned["action"]) == (False, True, "create")
    assert planned["content"] == text and not path.exists()

    created = run_module("adopt_host_vars", dict(args, _ansible_diff=True))
    assert (created["changed"], created["action"]) == (True, "create") and path.read_text() == text
    assert created["diff"] == dict(before_header=str(path), after_header=str(path), before="", after=text)
    assert run_module("adopt_host_vars", args) == dict(action="unchanged", content=text, changed=False, failed=False)

    newer = dict(args, variables={"datasafe_db_name": "lms2"})
    replaced = run_module("adopt_host_vars", newer)
    assert (replaced["changed"], replaced["action"]) == (True, "replace") and '"lms2"' in path.read_text()

    path.write_text("datasafe_db_name: mine\n")  # the operator's own file
    refused = run_module("adopt_host_vars", dict(args, _ansible_diff=True))
    plan = adopt.plan_host_vars(str(path), text)
    assert refused == dict(
        failed=True,
        changed=False,
        action="refuse",
        content=text,
        msg="%s exists and was not written by adopt (or was edited since): it is never overwritten. "
        "Compare it with what adopt read (below), merge by hand, or move it away and run adopt again. "
        "Nothing was changed.\n%s" % (path, plan["diff"]),
    )
    assert path.read_text() == "datasafe_db_name: mine\n"
