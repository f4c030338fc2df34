"""Undo one mistake, for real: one throwaway stack for the whole module.

A server of the test bed's pgBackRest image archives exactly as datasafe's override configures
it, with the in-database guard installed. Rows are written, a verified logical backup is taken,
a few more rows are written (the window only the WAL sees), then the moment; then a wrong
DELETE (results and their visits, one transaction) and a wrong UPDATE, both under the guard's
row limit; then the day goes on (new rows, a visit the bug touched closed on purpose, a freed key
reused, an untouched row corrected). The statements live in tests/undo/sql/.

The review must report exactly the destroyed and changed rows (and list the later changes as
conflicts), and change nothing but its own schema; the apply (after a verified backup, through
the guard's break-glass because the guard's limit was lowered meanwhile) must bring them back,
leave the conflicts and everything written after the mistake as it was, and leave every other
table byte for byte as before. The fallback from the logical backup must find what the backup
saw and say which window it cannot see.
"""

import json
import os
import subprocess
import sys
import time
import uuid

import pytest
from ansible.module_utils.datasafe import container, continuous, dbguard, runner
from harness import run_module
from pgbed import docker, free_port, throwaway_labels

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
IMAGE = "datasafe/postgres:15-bookworm-pgbackrest"
PLAIN_IMAGE = os.environ.get("DATASAFE_PG_IMAGE", "datasafe/postgres:15-bookworm")
USER, DB, STANZA = "lms_user", "lms_slncity", "undo_test"
TABLES = ["patients", "visits", "results"]
run = runner.run
pytestmark = pytest.mark.slow

# Every table of the public schema: its rows, in key order, as text, hashed (a content fingerprint).
FINGERPRINT_SQL = """
SELECT c.relname, (xpath('/row/h/text()', query_to_xml(format(
  'SELECT md5(coalesce(string_agg(t::text, E''\\n'' ORDER BY t::text), '''')) AS h FROM %I.%I t',
  n.nspname, c.relname), false, true, '')))[1]::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1;
"""


def sql_file(name):
    with open(os.path.join(HERE, "sql", name), encoding="utf-8") as handle:
        return handle.read()


class Lab:
    def __init__(self, root):
        self.name = "datasafe-test-undo-%s" % uuid.uuid4().hex[:8]
        self.root = root
        self.repo, self.conf, self.backups = root / "repo", root / "conf", root / "backups"
        self.port = free_port()
        self.labels = throwaway_labels()

    def q(self, sql):
        return container.query(run, self.name, DB, USER, sql)

    def fingerprint(self):
        return dict(self.q(FINGERPRINT_SQL))

    def moment(self):
        return self.q("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00:00';")[
            0
        ][0]

    def review_args(self, **kw):
        args = dict(
            container=self.name, database=DB, user=USER, tables=TABLES, target_kind="time", target=self.target,
            image=IMAGE, stanza=STANZA, repo_dir=str(self.repo), conf_dir=str(self.conf),
            backup_dir=str(self.backups), labels=self.labels[1::2], timeout=600,
        )  # fmt: skip
        args.update(kw)
        return args

    def start(self):
        os.makedirs(self.conf)
        os.makedirs(self.repo, mode=0o700)
        os.makedirs(self.backups, mode=0o700)
        os.chown(self.repo, *continuous.image_postgres_ids(run, IMAGE))
        (self.conf / continuous.CONF_NAME).write_text(continuous.render_conf(STANZA, self.port, USER, 1))
        self.conf.chmod(0o755)
        (self.conf / continuous.CONF_NAME).chmod(0o644)
        command = continuous.with_settings(
            ["postgres", "-c", "listen_addresses=127.0.0.1"], continuous.server_settings(STANZA, 1)
        )
        docker("volume", "create", *self.labels, self.name)
        docker(
            "run", "-d", "--name", self.name, "--network", "host", *self.labels,
            "-e", "PGPORT=%d" % self.port, "-e", "POSTGRES_USER=" + USER, "-e", "POSTGRES_DB=" + DB,
            "-e", "POSTGRES_PASSWORD=throwaway-test-password",
            "--mount", "type=volume,source=%s,target=/var/lib/postgresql/data" % self.name,
            "--mount", "type=bind,source=%s,target=%s" % (self.repo, continuous.REPO_MOUNT),
            "--mount", "type=bind,source=%s,target=%s,readonly" % (self.conf, continuous.CONF_MOUNT),
            IMAGE, *command,
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while run(["docker", "exec", self.name, "pg_isready", "-q", "-h", "127.0.0.1", "-U", USER, "-d", DB])[0]:
            assert time.monotonic() < deadline, "the throwaway server did not start"
            time.sleep(0.5)
        time.sleep(1)  # the entrypoint's temporary server may still be stopping
        while run(["docker", "exec", self.name, "pg_isready", "-q", "-h", "127.0.0.1", "-U", USER, "-d", DB])[0]:
            assert time.monotonic() < deadline, "the throwaway server did not start"
            time.sleep(0.5)
        self.q(sql_file("schema.sql"))
        dbguard.install(run, self.name, DB, USER, dbguard.normalize_settings())
        continuous.pgbackrest(run, self.name, STANZA, ["stanza-create"], "stanza-create")
        continuous.pgbackrest(run, self.name, STANZA, ["backup", "--type=full"], "backup")
        self.backup(kind="manual")
        time.sleep(1.1)
        self.q(sql_file("window.sql"))
        time.sleep(1.1)
        self.target = self.moment()
        time.sleep(1.1)
        self.delete_xid = self.q(sql_file("mistake_delete.sql"))[0][0]
        self.update_xid = self.q(sql_file("mistake_update.sql"))[0][0]
        self.q(sql_file("after.sql"))
        self.archive_now()
        return self

    def playbook(self, check=False, **extra):
        """Real ansible-playbook playbooks/undo.yml against this stack (a compose file naming it)."""
        (self.root / "docker-compose.prod.yml").write_text(
            json.dumps({"services": {"postgres": {"image": IMAGE, "container_name": self.name}}})
        )
        (self.root / "hosts.yml").write_text(
            json.dumps(
                {"all": {"children": {"production": {"hosts": {"localhost": {
                    "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}}}
            )
        )  # fmt: skip
        variables = dict(
            datasafe_compose_dir=str(self.root), datasafe_compose_project=STANZA, datasafe_db_container=self.name,
            datasafe_db_name=DB, datasafe_db_user=USER, datasafe_critical_tables=TABLES,
            datasafe_backup_dir=str(self.backups), datasafe_change_log=str(self.root / "change-log.txt"),
            datasafe_undo_repo_dir=str(self.repo), datasafe_undo_conf_dir=str(self.conf), datasafe_undo_image=IMAGE,
            datasafe_undo_target=self.target,
        )  # fmt: skip
        variables.update(extra)
        (self.root / "vars.json").write_text(json.dumps(variables))
        argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(self.root / "hosts.yml")]
        argv += ["playbooks/undo.yml", "-e", "@%s" % (self.root / "vars.json")] + (["--check"] if check else [])
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
        return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)

    def change_log(self):
        path = self.root / "change-log.txt"
        return path.read_text() if path.exists() else ""

    def backup(self, kind):
        done = run_module(
            "pg_backup", container=self.name, database=DB, user=USER, backup_dir=str(self.backups), tables=TABLES,
            kind=kind, label="undo test",
        )  # fmt: skip
        assert not done["failed"], done["msg"]
        return done

    def archive_now(self):
        """Switch and wait until the segment holding everything so far is in the repository."""
        wal = self.q("SELECT pg_walfile_name(pg_switch_wal());")[0][0]
        deadline = time.monotonic() + 300
        while (self.q("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver;")[0][0] or "") < wal:
            assert time.monotonic() < deadline, "WAL segment %s was not archived" % wal
            time.sleep(0.5)

    def remove(self):
        docker("rm", "--force", self.name, check=False)
        docker("volume", "rm", self.name, check=False)
        # the repository's files belong to the image's postgres user; remove them from inside
        docker(
            "run", "--rm", "--network", "none", "--user", "0", "--entrypoint", "rm",
            "--mount", "type=bind,source=%s,target=/mnt/root" % self.root, IMAGE, "-rf", "/mnt/root/repo",
            check=False,
        )  # fmt: skip


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if docker("image", "inspect", IMAGE, check=False).returncode != 0:
        pytest.fail("%s is missing: run testbed/setup.sh (testbed/build-continuous-image.sh builds it)" % IMAGE)
    lab = Lab(tmp_path_factory.mktemp("undo"))
    try:
        yield lab.start()
    finally:
        lab.remove()


@pytest.fixture(scope="module")
def reviewed(lab):
    """The review with the mistake's two transactions named, and the fingerprints around it."""
    before = lab.fingerprint()
    done = run_module("undo_review", lab.review_args(mistake_xids=[lab.delete_xid, lab.update_xid]))
    assert not done["failed"], done["msg"]
    return done, before, lab.fingerprint()


def test_check_mode_recovers_and_writes_nothing(lab):
    before = lab.fingerprint()
    done = run_module("undo_review", lab.review_args(), check_mode=True)
    assert not done["failed"], done["msg"]
    assert done["changed"] and "compare patients, visits, results" in done["would"]
    assert lab.fingerprint() == before
    assert lab.q("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'datasafe\\_undo\\_%';") == [["0"]]


@pytest.mark.parametrize(
    "args, expect",
    [
        (dict(tables=["patients", "no_such_table"]), "no table no_such_table in the live database"),
        (dict(tables=["loose_log"]), "loose_log has no primary key"),
        (dict(target="2099-01-01 00:00:00+00"), "is in the future"),
        (dict(target="2026-12-01 15:59:00"), "has no zone"),
        (dict(target="2001-01-01 00:00:00+00"), "older than any backup in the pgBackRest repository"),
        (dict(target="2001-01-01 00:00:00+00", source="backup"), "older than any backup of lms_slncity"),
        (dict(target_kind="name", target="nope", source="backup"), "must be a time"),
    ],
)
def test_bad_input_is_refused_with_the_reason_and_changes_nothing(lab, args, expect):
    before = lab.fingerprint()
    done = run_module("undo_review", lab.review_args(**args))
    assert done["failed"] and expect in done["msg"], done["msg"]
    assert lab.fingerprint() == before
    assert docker("ps", "-aq", "--filter", "name=datasafe-undo-").stdout.strip() == ""


def test_a_live_table_that_changed_shape_is_refused(lab):
    done = run_module("undo_review", lab.review_args(tables=["shape_probe"]))
    assert done["failed"] and "changed shape since the moment" in done["msg"] and "new: w integer" in done["msg"]
    assert docker("ps", "-aq", "--filter", "name=datasafe-undo-").stdout.strip() == ""


def test_review_reports_exactly_the_destroyed_and_changed_rows(lab, reviewed):
    done, before, after = reviewed
    assert done["changed"]
    assert done["found"] == {
        "patients": {"bring_back": 0, "revert": 0, "conflict": 0},
        # visits 191-200 deleted; 101-130 overwritten, 105 closed on purpose since
        "visits": {"bring_back": 10, "revert": 29, "conflict": 1},
        # results 381-400 and the 5 written in the window deleted, 381 reused since; 3 corrected since
        "results": {"bring_back": 24, "revert": 0, "conflict": 2},
    }
    schema = done["schema"]
    rows = lab.q('SELECT _action, id FROM %s."results" ORDER BY id;' % schema)
    assert [int(i) for a, i in rows if a == "bring_back"] == list(range(382, 401)) + list(range(1001, 1006))
    assert sorted(int(i) for a, i in rows if a == "conflict") == [3, 381]
    reverts = lab.q("SELECT id, status FROM %s.visits WHERE _action = 'revert' ORDER BY id;" % schema)
    assert [int(i) for i, _ in reverts] == [i for i in range(101, 131) if i != 105]
    assert {s for _, s in reverts} == {"open"}  # the values as they were at the moment
    # changed rows are listed by the transaction that wrote them, the mistake's named as such
    xid = str(int(lab.update_xid) % (1 << 32))
    assert done["changed_by_xid"]["visits"][xid] == 29
    assert any("named as the mistake" in line for line in done["summary"])
    # nothing but the review schema was written; the throwaway server is gone
    assert before == after
    assert docker("ps", "-aq", "--filter", "name=datasafe-undo-").stdout.strip() == ""


def test_fallback_from_the_logical_backup_says_what_it_cannot_see(lab):
    done = run_module("undo_review", lab.review_args(source="backup", image=PLAIN_IMAGE, mistake_xids=[lab.update_xid]))
    assert not done["failed"], done["msg"]
    # the 5 results written after the backup and destroyed by the mistake are invisible
    assert done["found"]["results"] == {"bring_back": 19, "revert": 0, "conflict": 2}
    assert done["found"]["visits"] == {"bring_back": 10, "revert": 29, "conflict": 1}
    assert "invisible to this undo" in done["window_not_seen"] and done["summary"][-1].startswith("NOT SEEN")
    assert docker("ps", "-aq", "--filter", "name=datasafe-drill-undo-").stdout.strip() == ""


def test_the_playbook_in_check_mode_changes_nothing(lab):
    before = lab.fingerprint()
    reviews = lab.q("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'datasafe\\_undo\\_%';")
    proc = lab.playbook(check=True, datasafe_undo_mode="apply", datasafe_undo_confirm=DB)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "check mode: review first, then apply it" in proc.stdout
    assert lab.fingerprint() == before and lab.change_log() == ""
    assert lab.q("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'datasafe\\_undo\\_%';") == reviews


def test_the_playbook_refuses_an_apply_without_the_confirmation(lab):
    proc = lab.playbook(datasafe_undo_mode="apply")
    assert proc.returncode != 0 and "confirm with -e datasafe_undo_confirm=lms_slncity" in proc.stdout
    assert lab.change_log() == ""


def test_the_playbook_reviews_and_logs_it(lab):
    # without the mistake's transaction named, every changed row is a conflict, never reverted
    proc = lab.playbook(datasafe_undo_tables=["visits"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "visits: 10 to bring back, 0 to revert, 30 conflicts" in proc.stdout
    assert "Undo review" in lab.change_log() and "30 conflicts" in lab.change_log()
    lab.playbook_review = (
        [ln for ln in proc.stdout.splitlines() if "datasafe_undo_review=" in ln][0]
        .split("datasafe_undo_review=")[1]
        .split()[0]
    )


def test_apply_needs_the_confirmation_and_a_fresh_verified_backup(lab, reviewed):
    done = reviewed[0]
    refused = run_module("undo_apply", container=lab.name, database=DB, user=USER, review=done["run"])
    assert refused["failed"] and "datasafe_undo_confirm=lms_slncity" in refused["msg"]
    old = run_module(
        "undo_apply", container=lab.name, database=DB, user=USER, review=done["run"], confirm=DB,
        backup_dir=str(lab.backups), backup_max_age_minutes=0,
    )  # fmt: skip
    assert old["failed"] and "verified backup" in old["msg"]
    planned = run_module(
        "undo_apply", dict(container=lab.name, database=DB, user=USER, review=done["run"], confirm=DB), check_mode=True
    )
    assert not planned["failed"] and "visits: bring back 10, revert 29, leave 1 conflicts" in planned["would"]
    assert lab.fingerprint() == reviewed[2]


def test_apply_brings_back_exactly_what_the_mistake_destroyed(lab, reviewed):
    done, _, fingerprint = reviewed
    # the operator lowered the guard's limit for visits after the mistake: the revert of 29 rows
    # is above it, so only the undo's break-glass lets it through (audited)
    dbguard.install(run, lab.name, DB, USER, dbguard.normalize_settings(table_limits={"visits": 10}))
    audit = int(lab.q("SELECT count(*) FROM datasafe.audit;")[0][0])
    later = lab.q("SELECT id, visit_id, test, value FROM results WHERE test = 'after' OR id IN (3, 381) ORDER BY id;")
    lab.backup(kind="pre-change")
    applied = run_module(
        "undo_apply", container=lab.name, database=DB, user=USER, review=done["run"], confirm=DB,
        backup_dir=str(lab.backups),
    )  # fmt: skip
    assert not applied["failed"], applied["msg"]
    assert applied["counts"]["visits"] == {"before": 210, "after": 220, "brought_back": 10, "reverted": 29}
    assert applied["counts"]["results"] == {"before": 401, "after": 425, "brought_back": 24, "reverted": 0}
    assert lab.q(
        "SELECT count(*) FROM visits WHERE id <= 200 AND id <> 105 AND (status <> 'open' OR note IS NULL);"
    ) == [["0"]]
    assert lab.q("SELECT status FROM visits WHERE id = 105;") == [["closed"]]  # the later change stays
    assert lab.q("SELECT count(*) FROM results WHERE visit_id > 190 AND visit_id <= 200;") == [["24"]]
    assert (
        lab.q("SELECT id, visit_id, test, value FROM results WHERE test = 'after' OR id IN (3, 381) ORDER BY id;")
        == later
    )
    assert lab.q("SELECT value_x2 = value * 2 FROM results WHERE id = 400;") == [["t"]]  # generated, recomputed
    now = lab.fingerprint()
    for table in set(now) - {"visits", "results"}:
        assert now[table] == fingerprint[table], table
    rows = lab.q("SELECT reason FROM datasafe.audit ORDER BY at DESC LIMIT 1;")
    assert int(lab.q("SELECT count(*) FROM datasafe.audit;")[0][0]) == audit + 1
    assert done["run"] in rows[0][0]
    # the sequences are past every key: a new row gets a new key
    assert lab.q("INSERT INTO results (visit_id, test) VALUES (1, 'new') RETURNING id > 1005;") == [["t"]]
    # a second apply of the same review is refused
    again = run_module(
        "undo_apply", container=lab.name, database=DB, user=USER, review=done["run"], confirm=DB,
        backup_dir=str(lab.backups),
    )  # fmt: skip
    assert again["failed"] and "applied already" in again["msg"]


def test_the_playbook_apply_of_a_stale_review_fails_logs_it_and_changes_nothing(lab):
    """The playbook's review was taken before the module's apply brought the visits back: its keys
    to bring back are in use again, so its apply must stop in its transaction and change nothing."""
    before = lab.fingerprint()
    proc = lab.playbook(datasafe_undo_mode="apply", datasafe_undo_review=lab.playbook_review, datasafe_undo_confirm=DB)
    assert proc.returncode != 0
    assert "in use again since the review" in proc.stdout
    log = lab.change_log()
    assert "About to apply undo review %s" % lab.playbook_review in log and "NOT applied" in log
    after = lab.fingerprint()
    assert after == before
    assert lab.q("SELECT count(*) FROM visits;") == [["220"]]
