"""Continuous recovery on a throwaway stack, after converge enabled it through the safe update.

Real PostgreSQL, real pgBackRest, real ansible-playbook runs, as an operator runs them. Tests run
in file order and share the stack: recoveries first, then the failure cases (each puts the
repository back as it was), and last the disaster, which destroys the stack's volume.
"""

import json
import os
import stat
import subprocess
import threading
import time
import urllib.request

import pytest

REPO = os.environ["MOLECULE_PROJECT_DIRECTORY"]
HERE = os.path.dirname(os.path.abspath(__file__))
SEEDED = {"users": 10, "patients": 2000, "visits": 6000, "test_results": 18000, "invoices": 6000}
SLOT_PORT = 56000 + 14 * 10  # this scenario's ports: 56140..56149 (56140/56141: the stack)
RUN_LOGS = "/tmp/datasafe-test-logs/continuous"
ENV = dict(
    os.environ,
    DATASAFE_TEST_SLOT="14",
    DATASAFE_PG_IMAGE="datasafe/postgres:15-bookworm-pgbackrest",
    DATASAFE_OVERRIDE_DIR="/var/tmp/datasafe-molecule/continuous/compose",
    DATASAFE_TEST_ARCHIVE_TIMEOUT="10",
    DATASAFE_TEST_HEALTH_RETRIES="300",
    ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
    MOLECULE_SCENARIO_NAME="continuous",
)


# --- helpers -----------------------------------------------------------------------------


def inventory():
    return os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])


def playbook(name, *extra, **extra_vars):
    """Run a playbook as an operator would; its output is kept under RUN_LOGS and its stdout is
    given back with whitespace folded (the callback wraps long messages)."""
    cmd = ["ansible-playbook", "-i", inventory(), os.path.join(REPO, "playbooks", name)] + list(extra)
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=ENV)
    os.makedirs(RUN_LOGS, exist_ok=True)
    with open(os.path.join(RUN_LOGS, "%s-%d.log" % (name, time.time())), "w") as handle:
        handle.write("$ %s\n%s\n%s" % (" ".join(cmd), proc.stdout, proc.stderr))
    proc.stdout = " ".join(proc.stdout.split())
    return proc


def module(name, **args):
    """Run one datasafe module ad hoc against the scenario's host; returns (rc, result)."""
    cmd = ["ansible", "-i", inventory(), "production", "-m", name, "-a", json.dumps(args), "-o"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=ENV)
    out = proc.stdout.split("=>", 1)[-1].strip() if "=>" in proc.stdout else ""
    if not out.startswith("{"):
        return proc.returncode, {"raw": proc.stdout + proc.stderr}
    return proc.returncode, json.JSONDecoder().raw_decode(out)[0]


def psql(stack, sql, cont=None, check=True):
    proc = subprocess.run(
        ["docker", "exec", cont or stack["datasafe_db_container"], "psql", "-X", "-At", "-v", "ON_ERROR_STOP=1"]
        + ["-U", stack["datasafe_db_user"], "-d", stack["datasafe_db_name"], "-c", sql],
        capture_output=True,
        text=True,
        check=False,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def counts(stack, cont=None):
    return {t: int(psql(stack, "SELECT count(*) FROM %s" % t, cont)) for t in SEEDED}


def insert(stack, note):
    """One committed row; returns its id and the moment after its commit (server clock)."""
    row = psql(stack, "INSERT INTO continuous_probe(note) VALUES ('%s') RETURNING id" % note)
    return int(row.splitlines()[0])


def server_now(stack):
    return psql(stack, "SELECT clock_timestamp()::text")


def archive_now(stack, timeout=120):
    """Close the current WAL segment and wait until the archiver has pushed it."""
    segment = psql(stack, "SELECT pg_walfile_name(pg_current_wal_lsn())")
    psql(stack, "SELECT pg_switch_wal()")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = psql(stack, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
        if last[:24] >= segment:
            return segment
        time.sleep(0.5)
    raise AssertionError("segment %s was not archived within %ss" % (segment, timeout))


def stanza_dir(stack):
    return os.path.join(stack["datasafe_backup_dir"] + "-pgbackrest", "archive", stack["datasafe_compose_project"])


def recover(name, **target):
    port = SLOT_PORT + 2 + abs(hash(name)) % 7
    proc = playbook("recover.yml", datasafe_recover_name=name, datasafe_recover_port=port, **target)
    return proc, name


def remove_recovered(name):
    proc = playbook("recover.yml", datasafe_recover_state="absent", datasafe_recover_name=name)
    assert proc.returncode == 0, proc.stdout[-3000:]
    for kind in ("container", "volume"):
        assert subprocess.run(["docker", kind, "inspect", name], capture_output=True).returncode != 0


@pytest.fixture()
def recovered(stack):
    names = []

    def make(suffix, **target):
        name = "%s-rec-%s" % (stack["datasafe_compose_project"], suffix)
        names.append(name)
        return recover(name, **target)

    yield make
    for name in names:
        for kind in ("container", "volume"):
            argv = ["docker", kind, "rm"] + (["--force"] if kind == "container" else []) + [name]
            subprocess.run(argv, capture_output=True)


# --- enabled, through the safe update ------------------------------------------------------


def test_the_database_runs_the_derived_image_with_wal_archiving(stack):
    image = subprocess.run(
        ["docker", "inspect", "--format", "{{.Config.Image}}", stack["datasafe_db_container"]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert image.startswith("datasafe-continuous/dstest-continuous-db:")
    assert psql(stack, "SHOW archive_mode") == "on"
    assert psql(stack, "SHOW archive_command") == "pgbackrest --stanza=dstest-continuous archive-push %p"
    assert psql(stack, "SHOW archive_timeout") == "%ss" % ENV["DATASAFE_TEST_ARCHIVE_TIMEOUT"]
    # the user's compose files were never edited: the checkout is clean
    status = subprocess.run(
        ["git", "-C", stack["datasafe_compose_dir"], "status", "--porcelain"], capture_output=True, text=True
    )
    assert status.returncode == 0 and status.stdout == ""
    assert counts(stack) == SEEDED


def test_the_rollout_went_through_the_safe_update_with_a_verified_backup_first(stack):
    with open(stack["datasafe_change_log"]) as handle:
        lines = handle.read().splitlines()
    backup = next(
        i for i, line in enumerate(lines) if "Backup (pre-change) BEFORE_UPDATE_" in line and "verified" in line
    )
    about = next(i for i, line in enumerate(lines) if "About to update dstest-continuous" in line)
    done = next(i for i, line in enumerate(lines) if "Change completed successfully" in line)
    enabled = next(i for i, line in enumerate(lines) if "Continuous recovery on for dstest-continuous" in line)
    assert backup < about < done < enabled
    assert "rows 32010 -> 32010" in lines[done]


def test_the_repository_and_override_are_private(stack):
    repo = os.stat(stack["datasafe_backup_dir"] + "-pgbackrest")
    assert stat.S_IMODE(repo.st_mode) == 0o700
    override = os.path.join(ENV["DATASAFE_OVERRIDE_DIR"], "dstest-continuous.continuous.yml")
    assert stat.S_IMODE(os.stat(override).st_mode) == 0o600


def test_status_is_healthy_and_written_as_metrics(stack):
    metrics = os.path.join(stack["datasafe_test_root"], "continuous.prom")
    rc, result = module(
        "continuous_status",
        container=stack["datasafe_db_container"],
        database=stack["datasafe_db_name"],
        user=stack["datasafe_db_user"],
        project=stack["datasafe_compose_project"],
        repo_dir=stack["datasafe_backup_dir"] + "-pgbackrest",
        metrics_file=metrics,
    )
    assert rc == 0, result
    assert result["problems"] == [] and result["enabled"] is True
    assert result["summary"]["full"]["error"] is False
    assert result["repo_bytes"] > 0
    text = open(metrics).read()
    assert 'datasafe_wal_archive_failing{stanza="dstest-continuous"} 0' in text
    assert "datasafe_pgbackrest_last_backup_age_seconds" in text


def test_compose_calls_made_with_docker_compose_v2_get_the_override_too(stack):
    rc, result = module(
        "compose_files",
        project=stack["datasafe_compose_project"],
        compose_dir=stack["datasafe_compose_dir"],
        files=["docker-compose.prod.yml"],
    )
    assert rc == 0, result
    assert result["files"] == [
        os.path.join(stack["datasafe_compose_dir"], "docker-compose.prod.yml"),
        os.path.join(ENV["DATASAFE_OVERRIDE_DIR"], "dstest-continuous.continuous.yml"),
    ]
    # (a real restore keeping archiving on: the break-glass test brings a recovery into the live stack)


# --- recovery to a moment --------------------------------------------------------------------


def test_recovery_to_a_time_has_every_row_committed_before_it_and_none_after(stack, recovered):
    psql(stack, "CREATE TABLE IF NOT EXISTS continuous_probe (id serial PRIMARY KEY, note text)")
    before = [insert(stack, "before-%d" % i) for i in range(15)]
    time.sleep(0.5)
    target = server_now(stack)
    time.sleep(0.5)
    after = [insert(stack, "after-%d" % i) for i in range(15)]
    archive_now(stack)

    proc, name = recovered("time", datasafe_recover_target_kind="time", datasafe_recover_target=target)
    assert proc.returncode == 0, proc.stdout[-3000:]
    ids = [int(i) for i in psql(stack, "SELECT id FROM continuous_probe ORDER BY id", cont=name).split()]
    assert set(before) <= set(ids)
    assert not set(after) & set(ids)
    assert counts(stack, cont=name) == SEEDED
    # recovered beside, never into the live server: the live one still has every row
    assert (
        int(psql(stack, "SELECT count(*) FROM continuous_probe WHERE id = ANY('{%s}')" % ",".join(map(str, after))))
        == 15
    )
    assert "rows live now" in proc.stdout and "rows recovered" in proc.stdout
    # the operator removes the throwaway server with the playbook; only it and its volume go
    remove_recovered(name)


def test_a_target_in_the_future_is_refused_and_creates_nothing(stack):
    name = "dstest-continuous-rec-future"
    proc, _ = recover(name, datasafe_recover_target_kind="time", datasafe_recover_target="2999-01-01 00:00:00+00")
    assert proc.returncode != 0
    assert "in the future" in proc.stdout
    for kind in ("container", "volume"):
        assert subprocess.run(["docker", kind, "inspect", name], capture_output=True).returncode != 0


def test_a_time_without_its_zone_is_refused(stack):
    proc, _ = recover(
        "dstest-continuous-rec-nozone",
        datasafe_recover_target_kind="time",
        datasafe_recover_target="2026-01-01 00:00:00",
    )
    assert proc.returncode != 0 and "has no zone" in proc.stdout


# --- fail closed ---------------------------------------------------------------------------


def wait_for(what, probe, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(1)
    raise AssertionError("%s: not within %ss" % (what, timeout))


def status(stack):
    return module(
        "continuous_status",
        container=stack["datasafe_db_container"],
        database=stack["datasafe_db_name"],
        user=stack["datasafe_db_user"],
        project=stack["datasafe_compose_project"],
    )


def test_a_failing_archive_command_is_reported_while_postgresql_keeps_running(stack):
    info = os.path.join(stanza_dir(stack), "archive.info")
    hidden = [(info + suffix, info + suffix + ".hidden-by-test") for suffix in ("", ".copy")]
    for path, aside in hidden:
        os.rename(path, aside)
    try:
        row = insert(stack, "written while archiving fails")
        psql(stack, "SELECT pg_switch_wal()")
        wait_for("archive failure", lambda: psql(stack, "SELECT failed_count > 0 FROM pg_stat_archiver") == "t")
        rc, result = status(stack)
        assert rc != 0
        assert any("FAILING" in p for p in result["problems"]), result
        assert result["archiving"]["ready_segments"] >= 1 and result["archiving"]["wal_bytes"] > 0
        # PostgreSQL keeps running and keeps taking writes (the WAL waits in pg_wal)
        assert insert(stack, "still writable") > row
        # and the safe update refuses to start while the restore point would not be recoverable
        proc = playbook("safe_update.yml", "--check")
        assert proc.returncode != 0 and "archiving is FAILING" in proc.stdout, proc.stdout[-3000:]
        # and so does the protocol's "after any change" verify
        proc = playbook("verify.yml")
        assert proc.returncode != 0 and "archiving is FAILING" in proc.stdout, proc.stdout[-3000:]
    finally:
        for path, aside in hidden:
            os.rename(aside, path)
    archive_now(stack, timeout=180)
    rc, result = status(stack)
    assert rc == 0 and result["problems"] == [], result


def test_a_rollout_whose_archiving_fails_is_rolled_back_through_the_safe_update(stack):
    """A changed override (archive_timeout 20 s) rolled out while archive-push cannot write: the
    safe update restarts the stack on it, archiving then fails pgbackrest check, and the rollout
    is undone through a second safe update: the previous override is back in effect, every row kept."""
    override = os.path.join(ENV["DATASAFE_OVERRIDE_DIR"], "dstest-continuous.continuous.yml")
    with open(override) as handle:
        previous = handle.read()
    probe = psql(stack, "SELECT count(*) FROM continuous_probe")
    archive_now(stack)  # nothing waits to be archived: the update's preflight finds archiving healthy
    # the directory new segments go to is made read-only: archive-push fails from the next segment
    # on, while the repository still reads as healthy (info, backups) for the preflight
    wal_root = next(os.path.join(stanza_dir(stack), d) for d in os.listdir(stanza_dir(stack)) if d[:2].isdigit())
    segments_dir = os.path.join(wal_root, sorted(d for d in os.listdir(wal_root) if len(d) == 16)[-1])
    mode = stat.S_IMODE(os.stat(segments_dir).st_mode)
    os.chmod(segments_dir, 0o500)
    try:
        proc = playbook("continuous.yml", datasafe_continuous_archive_timeout=20)
        assert proc.returncode != 0, proc.stdout[-3000:]
        assert (
            "ENABLING CONTINUOUS RECOVERY FAILED" in proc.stdout and "restored to its previous content" in proc.stdout
        )
        # the server was restarted on the new override, then back onto the previous one
        with open(stack["datasafe_change_log"]) as handle:
            log = handle.read()
        assert "rolled back by a second safe update" in log
        assert psql(stack, "SHOW archive_timeout") == "%ss" % ENV["DATASAFE_TEST_ARCHIVE_TIMEOUT"]
        with open(override) as handle:
            assert handle.read() == previous
        assert counts(stack) == SEEDED and psql(stack, "SELECT count(*) FROM continuous_probe") == probe
        with urllib.request.urlopen(stack["datasafe_health_url"], timeout=10) as resp:  # noqa: S310 (loopback)
            assert resp.status == 200
    finally:
        os.chmod(segments_dir, mode)
    archive_now(stack, timeout=180)
    rc, result = status(stack)
    assert rc == 0 and result["problems"] == [], result


def test_a_killed_backup_is_never_listed_as_good(stack):
    def good_backups():
        out = subprocess.run(
            [
                "docker",
                "exec",
                "--user",
                "postgres",
                stack["datasafe_db_container"],
                "pgbackrest",
                "--stanza=dstest-continuous",
                "info",
                "--output=json",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return [b["label"] for b in json.loads(out)[0]["backup"] if not b.get("error")]

    before = good_backups()
    # kill -9 by the pid of the backup this test started, mid-way
    killed = subprocess.run(
        [
            "docker",
            "exec",
            "--user",
            "postgres",
            stack["datasafe_db_container"],
            "bash",
            "-c",
            "pgbackrest --stanza=dstest-continuous backup --type=full & pid=$!; sleep 1; kill -9 $pid; wait $pid",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert killed.returncode == 137, killed
    assert good_backups() == before
    # the next backup run completes and is verified (a killed one leaves no lock behind)
    rc, result = module(
        "continuous_backup", container=stack["datasafe_db_container"], stanza="dstest-continuous", type="diff"
    )
    assert rc == 0, result
    assert good_backups() == before + [result["backup"]["label"]]


def test_the_nightly_job_also_takes_a_verified_differential_pgbackrest_backup(stack):
    def newest():
        out = subprocess.run(
            ["docker", "exec", "--user", "postgres", stack["datasafe_db_container"], "pgbackrest"]
            + ["--stanza=dstest-continuous", "info", "--output=json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return json.loads(out)[0]["backup"][-1]

    before = newest()["label"]
    proc = playbook("backup.yml", datasafe_backup_kind="scheduled")
    assert proc.returncode == 0, proc.stdout[-3000:]
    after = newest()
    assert after["label"] != before and after["type"] == "diff" and not after["error"]


def test_the_restore_drill_recovers_a_fresh_heartbeat_within_the_rpo(stack):
    proc = playbook("restore_drill.yml")
    assert proc.returncode == 0, proc.stdout[-3000:]
    with open(stack["datasafe_change_log"]) as handle:
        line = [x for x in handle.read().splitlines() if "Continuous recovery drill of dstest-continuous" in x][-1]
    archived_after = float(line.split("archived after ")[1].split(" s")[0])
    assert 0 <= archived_after <= 120
    # the throwaway server and its volume are gone
    left = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=io.datasafe.recovered=dstest-continuous"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert left == ""


def test_a_break_glass_statement_gets_a_restore_point_and_recovery_to_it_goes_into_the_live_stack(stack, recovered):
    before = int(psql(stack, "SELECT count(*) FROM continuous_probe"))
    assert before > 0
    rc, result = module(
        "safe_sql",
        container=stack["datasafe_db_container"],
        database=stack["datasafe_db_name"],
        user=stack["datasafe_db_user"],
        src=os.path.join(HERE, "breakglass.sql"),
        allow_destructive=True,
        reason="test: the restore point before a break-glass statement",
        backup_dir=stack["datasafe_backup_dir"],
        breakglass_max_age=60,
        change_log=stack["datasafe_change_log"],
        change_log_json=os.path.splitext(stack["datasafe_change_log"])[0] + ".jsonl",
    )
    assert rc == 0, result
    point = result["breakglass"]["restore_point"]
    assert point.startswith("datasafe-break-glass-")
    assert psql(stack, "SELECT count(*) FROM continuous_probe") == "0"
    archive_now(stack)
    # recovered to the restore point AND brought into the live stack (beside and swap): the rows
    # the break-glass statement deleted are live again, the current database is kept
    db = stack["datasafe_db_name"]
    proc, name = recovered(
        "breakglass",
        datasafe_recover_target_kind="name",
        datasafe_recover_target=point,
        datasafe_recover_into_live=True,
        datasafe_restore_confirm=db,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert int(psql(stack, "SELECT count(*) FROM continuous_probe", cont=name)) == before
    assert int(psql(stack, "SELECT count(*) FROM continuous_probe")) == before
    assert counts(stack) == SEEDED
    kept = psql(stack, "SELECT datname FROM pg_database WHERE datname LIKE '%s_before_restore_%%'" % db).split()
    assert len(kept) == 1, kept
    assert psql(dict(stack, datasafe_db_name=kept[0]), "SELECT count(*) FROM continuous_probe") == "0"
    # a verified safety backup of the database it replaced came first, with a restore point
    with open(os.path.splitext(stack["datasafe_change_log"])[0] + ".jsonl") as handle:
        entries = [json.loads(line) for line in handle if line.strip()]
    restored = [e for e in entries if e.get("action") == "restore" and e.get("outcome") == "completed"][-1]
    assert os.path.basename(restored["safety_backup"]).startswith("BEFORE_RESTORE_"), restored
    assert restored["restore_point"].startswith("datasafe-restore-"), restored
    backups = os.listdir(stack["datasafe_backup_dir"])
    assert [f for f in backups if f.startswith("recovered") and f.endswith(".json")], backups
    assert [f for f in backups if f.startswith("BEFORE_RESTORE_") and f.endswith(".json")], backups
    # the restore restarted the stack with datasafe's override: archiving is still on
    assert psql(stack, "SHOW archive_mode") == "on"


def archived_segments(stack):
    found = []
    for root, _dirs, files in os.walk(stanza_dir(stack)):
        # WAL segments only (000000010000000000000003-<sha1>.gz), not .backup or .history files
        found += [os.path.join(root, f) for f in files if len(f) > 25 and f[:24].isalnum() and f[24] == "-"]
    return sorted(found)


def test_a_corrupt_wal_segment_is_found_and_fails_the_backup_run(stack):
    # a segment this test knows is archived (a loaded run once found none left by the earlier tests)
    insert(stack, "in the segment that gets corrupted")
    name = archive_now(stack)
    found = [p for p in archived_segments(stack) if os.path.basename(p).startswith(name)]
    assert found, (name, sorted(os.path.basename(p) for p in archived_segments(stack)))
    segment = found[0]
    size = os.path.getsize(segment)
    with open(segment, "r+b") as handle:
        handle.seek(size // 2)
        byte = handle.read(1)
        handle.seek(size // 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    try:
        # pgBackRest's verify exits 0 on damage; datasafe reads its report and fails the backup run
        rc, result = module(
            "continuous_backup", container=stack["datasafe_db_container"], stanza="dstest-continuous", type="incr"
        )
        assert rc != 0, result
        assert "verify found damage" in result["msg"] and os.path.basename(segment)[:24] in result["msg"]
    finally:
        with open(segment, "r+b") as handle:
            handle.seek(size // 2)
            handle.write(byte)


def test_a_missing_segment_stops_recovery_to_latest_loudly(stack, recovered):
    insert(stack, "in the segment that goes missing")
    missing = archive_now(stack)
    insert(stack, "after the missing segment")
    archive_now(stack)
    path = next(p for p in archived_segments(stack) if os.path.basename(p).startswith(missing))
    os.rename(path, path + ".hidden-by-test")
    try:
        proc, name = recovered("gap")
        assert proc.returncode != 0
        assert "stopped early" in proc.stdout and missing[8:] not in ("",)
    finally:
        os.rename(path + ".hidden-by-test", path)


# --- the disaster: the stack's volume is destroyed while rows are being written -------------


def test_after_the_volume_is_destroyed_recovery_to_latest_has_every_committed_row(stack, recovered):
    committed, stop = [], threading.Event()
    note = "writer-%d" % time.time()
    # one psql session, autocommit: each id read back is a committed row
    session = subprocess.Popen(
        ["docker", "exec", "-i", stack["datasafe_db_container"], "psql", "-X", "-At", "-q", "-v", "ON_ERROR_STOP=1"]
        + ["-U", stack["datasafe_db_user"], "-d", stack["datasafe_db_name"]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )

    def writer():
        while not stop.is_set():
            session.stdin.write("INSERT INTO continuous_probe(note) VALUES ('%s') RETURNING id;\n" % note)
            session.stdin.flush()
            committed.append(int(session.stdout.readline()))
            time.sleep(0.1)

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(5)
    stop.set()
    thread.join()
    session.stdin.close()
    session.wait(timeout=60)
    assert len(committed) >= 10
    archive_now(stack)

    # the disaster, for real: the container and its named volume are gone (argv kept in a file)
    with open(os.path.join(HERE, "disaster.json")) as handle:
        steps = json.load(handle)
    volume = "%s_%s" % (stack["datasafe_compose_project"], "postgres_data")
    for argv in steps:
        subprocess.run(
            [a.format(container=stack["datasafe_db_container"], volume=volume) for a in argv],
            capture_output=True,
            check=True,
        )
    assert subprocess.run(["docker", "volume", "inspect", volume], capture_output=True).returncode != 0

    proc, name = recovered("latest")
    assert proc.returncode == 0, proc.stdout[-3000:]
    ids = set(
        int(i) for i in psql(stack, "SELECT id FROM continuous_probe WHERE note = '%s'" % note, cont=name).split()
    )
    assert ids == set(committed)
    assert counts(stack, cont=name) == SEEDED
