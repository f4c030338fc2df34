"""playbooks/status.yml end to end on a database with continuous recovery on.

One throwaway server of the test bed's pgBackRest image with the LMS schema and data, archiving
exactly as datasafe's override configures it (continuous.server_settings, render_conf) into a
repository on a host directory laid out as the role lays it out, its stanza named after the
inventory's compose project as continuous_plan names it. Real ansible-playbook runs of
status.yml (and backup.yml, so the backup row is green too) against it:

- archiving working and a full backup taken: the "WAL archiving" and "pgBackRest" rows are
  green with the true numbers (the segment pg_stat_archiver names as last archived, an age no
  older than the test has waited, the repository's one full backup), the whole status is green,
  and the HTML report shows both rows green;
- the repository made unwritable for PostgreSQL (archive-push fails for real): the "WAL
  archiving" row turns red naming the failing segment, status exits non-zero with it in its
  reasons, the report shows it red;
- the repository writable again: archiving catches up and status is green again.
"""

import json
import os
import re
import time
import uuid

import pytest
from ansible.module_utils.datasafe import container, continuous, runner
from browser import GREEN, RED, chromium, render
from opbed import home_of, play
from pgbed import CRITICAL_TABLES, ThrowawayPostgres, docker

IMAGE = "datasafe/postgres:15-bookworm-pgbackrest"
run = runner.run


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    if docker("image", "inspect", IMAGE, check=False).returncode != 0:
        pytest.fail("%s is missing: run testbed/setup.sh (testbed/build-continuous-image.sh builds it)" % IMAGE)
    root = tmp_path_factory.mktemp("status-continuous")
    project = "dstest-stc-%s" % uuid.uuid4().hex[:8]
    stanza = continuous.stanza_name(project)
    repo, conf = root / "repo", root / "conf"
    repo.mkdir(mode=0o700)
    conf.mkdir()
    conf.chmod(0o755)  # read by the container's postgres user, as the role writes it
    os.chown(repo, *continuous.image_postgres_ids(run, IMAGE))  # the role makes it the image's postgres user's
    command = continuous.with_settings(
        ["postgres", "-c", "listen_addresses=127.0.0.1"], continuous.server_settings(stanza)
    )
    mounts = [
        "--mount", "type=bind,source=%s,target=%s" % (repo, continuous.REPO_MOUNT),
        "--mount", "type=bind,source=%s,target=%s,readonly" % (conf, continuous.CONF_MOUNT),
    ]  # fmt: skip
    server = ThrowawayPostgres(image=IMAGE, command=command, run_args=mounts)
    (conf / continuous.CONF_NAME).write_text(continuous.render_conf(stanza, server.port, server.user, 1))
    (conf / continuous.CONF_NAME).chmod(0o644)
    try:
        server.start().seed(scale=1)
        continuous.pgbackrest(run, server.container, stanza, ["stanza-create"], "stanza-create")
        continuous.pgbackrest(run, server.container, stanza, ["check"], "check")
        inventory = write_inventory(root, project, server)
        yield {"server": server, "stanza": stanza, "repo": str(repo), "inventory": inventory}
    finally:
        os.chmod(repo, 0o700)  # the break test may have left it unwritable
        server.remove()


def write_inventory(root, project, server):
    variables = {
        # the stack's names as status needs them (status reads; it starts and stops nothing)
        "datasafe_compose_dir": str(root),
        "datasafe_compose_project": project,
        "datasafe_db_container": server.container,
        "datasafe_db_name": server.db,
        "datasafe_db_user": server.user,
        "datasafe_critical_tables": CRITICAL_TABLES,
        "datasafe_health_url": "http://127.0.0.1:9/health",
        # continuous recovery is what this host must have; off-site and drill are not the subject
        "datasafe_status_expect_continuous": True,
        "datasafe_status_expect_offsite": False,
        "datasafe_status_expect_drill": False,
    }
    data = {
        "all": {
            "hosts": {
                "localhost": {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                }
            },
            "children": {"production": {"hosts": {"localhost": {}}}},
            "vars": variables,
        }
    }
    path = root / "hosts.yml"
    path.write_text(json.dumps(data))  # JSON is YAML
    return str(path)


def archiver(bed):
    server = bed["server"]
    return continuous.archiver(run, server.container, server.db, server.user)


def switch_wal(bed):
    """A committed row in a new WAL segment, switched out for archiving; that segment's name."""
    server = bed["server"]
    container.query(run, server.container, server.db, server.user, "SELECT txid_current();")  # a commit record
    # read after the commit: right after a switch the position sits on a segment boundary, and
    # pg_walfile_name names the segment before it (one already archived)
    q = "SELECT pg_walfile_name(pg_current_wal_lsn());"
    segment = container.query(run, server.container, server.db, server.user, q)[0][0]
    container.query(run, server.container, server.db, server.user, "SELECT pg_switch_wal();")
    return segment


def wait(condition, what, timeout=600, nudge=None):
    """Poll ``condition``; ``nudge`` (every 15 s) gives the archiver a new segment again: in a
    loaded CI run the archiver showed no attempt at a switched segment within 300 s (cause not
    found: the server was gone), so a wait never hangs on one switch; the timeout is generous."""
    deadline = time.monotonic() + timeout
    nudged = time.monotonic()
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for %s" % what
        if nudge and time.monotonic() - nudged > 15:
            nudge()
            nudged = time.monotonic()
        time.sleep(0.5)


def row(output, name):
    """The status table's line for ``name``: (state, detail), from the playbook's output (the
    callback wraps and quotes long lines: whitespace is normalized, a line ends where the next
    row's name or the next task begins)."""
    text = " ".join(output.split()).replace("'", "")
    names = ("backup", "off-site copy", "restore drill", "change lock", "dbguard", "volume pin", "agent hook")
    ends = "|".join(re.escape(n) for n in names + ("WAL archiving", "pgBackRest", "TASK"))
    found = re.search(r"- %s (OK|RED|OFF) (.*?)(?= - (?:%s) | TASK )" % (re.escape(name), ends), text)
    assert found, output[-4000:]
    return found.group(1), found.group(2)


def seconds(age_text):
    """'12 s ago' / '1.5 min ago' -> seconds (status.human_age's words)."""
    number, unit = age_text.split()[:2]
    return float(number) * {"s": 1, "min": 60, "h": 3600, "d": 86400}[unit]


def report_rows(bed, screenshot):
    shown = render(os.path.join(home_of(bed["inventory"]), "backups-status.html"), screenshot=screenshot)
    assert shown["resources"] == []
    return shown, {r["name"]: r for r in shown["rows"]}


def test_archiving_and_a_full_backup_are_green_with_the_true_numbers(bed):
    server = bed["server"]
    proc = play(bed["inventory"], "backup.yml")  # the backup row is green too: the status is green
    assert proc.returncode == 0, proc.stdout[-4000:]
    started = time.monotonic()
    continuous.pgbackrest(run, server.container, bed["stanza"], ["backup", "--type=full"], "backup")
    segment = switch_wal(bed)
    wait(
        lambda: (archiver(bed)["last_archived_wal"] or "") >= segment,
        "segment %s archived" % segment,
        nudge=lambda: switch_wal(bed),
    )
    last = archiver(bed)["last_archived_wal"]

    proc = play(bed["inventory"], "status.yml")
    waited = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout[-4000:]
    state, detail = row(proc.stdout, "WAL archiving")
    assert state == "OK", detail
    # the last file archived may be a backup's history file (<segment>.<offset>.backup)
    said = r"working: last segment ([0-9A-F]{24}\S*) archived (.+ ago), (\d+) waiting, (\d+) failed attempts in all"
    found = re.match(said, detail)
    assert found, detail
    # archive_timeout may have switched a newer (empty) segment out meanwhile: never an older one
    assert found.group(1) >= last and seconds(found.group(2)) <= waited, detail
    assert int(found.group(4)) == archiver(bed)["failed_count"]  # the failures before the stanza existed
    state, detail = row(proc.stdout, "pgBackRest")
    info = continuous.backups_summary(continuous.info(run, server.container, bed["stanza"]))
    assert info["count"] == 1 and info["full"]["label"].endswith("F")
    assert state == "OK" and detail.startswith("last full ") and "(1 in the repository)" in detail, detail
    assert seconds(detail[len("last full ") :]) <= waited, detail
    assert "NOT PROTECTED" not in proc.stdout


@pytest.mark.skipif(not chromium(), reason="chromium is missing: run testbed/setup.sh")
def test_the_report_shows_archiving_and_pgbackrest_green(bed, tmp_path):
    shown, rows = report_rows(bed, str(tmp_path / "green.png"))
    assert shown["verdict"] == {"text": "PROTECTED", "background": GREEN}
    for name in ("WAL archiving", "pgBackRest"):
        assert rows[name]["state"] == "OK" and rows[name]["background"] == GREEN, rows[name]
    assert rows["WAL archiving"]["detail"].startswith("working: last segment ")


def test_an_unwritable_repository_turns_archiving_red_naming_it(bed):
    os.chmod(bed["repo"], 0o000)  # PostgreSQL's archive-push can no longer write the repository
    segment = switch_wal(bed)
    wait(lambda: archiver(bed)["failing"], "archiving to fail", nudge=lambda: switch_wal(bed))
    failed = archiver(bed)["last_failed_wal"]
    assert failed >= segment

    proc = play(bed["inventory"], "status.yml")
    assert proc.returncode != 0
    state, detail = row(proc.stdout, "WAL archiving")
    assert state == "RED" and "archiving is FAILING: the last attempt (WAL %s," % failed in detail, detail
    reason = " ".join(proc.stdout[proc.stdout.rindex("NOT PROTECTED") :].split("PLAY RECAP")[0].split())
    assert "WAL archiving: archiving is FAILING" in reason
    assert "backup:" not in reason  # only what is broken is named


@pytest.mark.skipif(not chromium(), reason="chromium is missing: run testbed/setup.sh")
def test_the_report_shows_archiving_red(bed, tmp_path):
    shown, rows = report_rows(bed, str(tmp_path / "red.png"))
    assert shown["verdict"] == {"text": "NOT PROTECTED", "background": RED}
    assert rows["WAL archiving"]["state"] == "RED" and rows["WAL archiving"]["background"] == RED
    assert "archiving is FAILING" in rows["WAL archiving"]["detail"]


def test_a_writable_repository_again_is_green_again(bed):
    os.chmod(bed["repo"], 0o700)
    segment = switch_wal(bed)
    wait(
        lambda: (archiver(bed)["last_archived_wal"] or "") >= segment,
        "archiving to catch up",
        nudge=lambda: switch_wal(bed),
    )
    proc = play(bed["inventory"], "status.yml")
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert row(proc.stdout, "WAL archiving")[0] == "OK" and row(proc.stdout, "pgBackRest")[0] == "OK"
