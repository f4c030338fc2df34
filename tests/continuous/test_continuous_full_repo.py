"""A full repository disk, for real: archiving fails, datasafe says so, PostgreSQL keeps running.

A throwaway server of the test bed's pgBackRest image archives exactly as datasafe's override
configures it, into a repository on a 24 MiB tmpfs. Enough WAL to fill it is written; the test
asserts that continuous_status's checks (continuous.archiver + continuous.health) report archiving
as FAILING with the WAL waiting in pg_wal and its size, that the server still takes writes, and
that the server's log names the cause.
"""

import time
import uuid

import pytest
from ansible.module_utils.datasafe import container, continuous, runner, status
from pgbed import docker, free_port, throwaway_labels

IMAGE = "datasafe/postgres:15-bookworm-pgbackrest"
USER, DB, STANZA = "lms_user", "lms_slncity", "fullrepo"
run = runner.run


def image_present():
    return docker("image", "inspect", IMAGE, check=False).returncode == 0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not image_present():
        pytest.fail("%s is missing: run testbed/setup.sh (testbed/build-continuous-image.sh builds it)" % IMAGE)
    name = "datasafe-test-fullrepo-%s" % uuid.uuid4().hex[:8]
    conf = tmp_path_factory.mktemp("pgbackrest-conf")
    port = free_port()
    (conf / continuous.CONF_NAME).write_text(continuous.render_conf(STANZA, port, USER, 1))
    # read by the container's postgres user, as the role writes it (0755 directory, 0644 file)
    conf.chmod(0o755)
    (conf / continuous.CONF_NAME).chmod(0o644)
    command = continuous.with_settings(
        ["postgres", "-c", "listen_addresses=127.0.0.1"], continuous.server_settings(STANZA)
    )
    labels = throwaway_labels()
    owner = continuous.image_postgres_ids(run, IMAGE)
    docker("volume", "create", *labels, name)
    try:
        docker(
            "run", "-d", "--name", name, "--network", "host", *labels,
            "-e", "PGPORT=%d" % port, "-e", "POSTGRES_USER=" + USER, "-e", "POSTGRES_DB=" + DB,
            "-e", "POSTGRES_PASSWORD=throwaway-test-password",
            "--mount", "type=volume,source=%s,target=/var/lib/postgresql/data" % name,
            "--tmpfs", "%s:size=24m,mode=0700,uid=%d,gid=%d" % ((continuous.REPO_MOUNT,) + owner),
            "--mount", "type=bind,source=%s,target=%s,readonly" % (conf, continuous.CONF_MOUNT),
            IMAGE, *command,
        )  # fmt: skip
        deadline = time.monotonic() + 180
        while run(["docker", "exec", name, "pg_isready", "-q", "-h", "127.0.0.1", "-U", USER, "-d", DB])[0] != 0:
            assert time.monotonic() < deadline, "the throwaway server did not start"
            time.sleep(0.5)
        time.sleep(1)
        continuous.pgbackrest(run, name, STANZA, ["stanza-create"], "stanza-create")
        continuous.pgbackrest(run, name, STANZA, ["check"], "check")
        yield name
    finally:
        docker("rm", "--force", name, check=False)
        docker("volume", "rm", name, check=False)


def test_status_shows_archiving_working_and_the_newest_full_backup(server):
    """status.yml's continuous-recovery rows (status.continuous_checks) on the real archiving
    server, before its repository is filled: archiving green, no full backup red, then green."""
    db = {"container": server, "database": DB, "user": USER}
    rows, summary = status.continuous_checks(run, db, STANZA, True, 300, 30 * 3600, time.time())
    assert [r["state"] for r in rows] == ["ok", "red"], rows
    assert rows[0]["detail"].startswith("working: last segment ")
    assert "no good full backup" in rows[1]["detail"] and summary["count"] == 0
    continuous.pgbackrest(run, server, STANZA, ["backup", "--type=full"], "backup")
    rows, summary = status.continuous_checks(run, db, STANZA, True, 300, 30 * 3600, time.time())
    assert [r["state"] for r in rows] == ["ok", "ok"], rows
    assert rows[1]["detail"].startswith("last full ") and "(1 in the repository)" in rows[1]["detail"]
    assert summary["full"]["label"].endswith("F")


def test_a_full_repository_is_reported_and_postgresql_keeps_running(server):
    arch = continuous.archiver(run, server, DB, USER)
    assert continuous.health(arch, None, STANZA, 300) == []
    # incompressible WAL, well over what the 24 MiB repository holds
    container.query(
        run, server, DB, USER,
        "CREATE TABLE filler AS SELECT g, md5(random()::text) || md5(random()::text) AS junk "
        "FROM generate_series(1, 400000) g; SELECT pg_switch_wal();",
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not continuous.archiver(run, server, DB, USER)["failing"]:
        assert time.monotonic() < deadline, "archiving never failed on a full repository"
        time.sleep(1)
    arch = continuous.archiver(run, server, DB, USER)
    problems = continuous.health(arch, None, STANZA, 300)
    assert problems and "archiving is FAILING" in problems[0]
    assert arch["ready_segments"] >= 1 and arch["wal_bytes"] >= 16 << 20
    assert "%d segment(s)" % arch["ready_segments"] in problems[0]
    # PostgreSQL keeps running and keeps taking writes; the WAL waits in pg_wal
    rows = container.query(run, server, DB, USER, "INSERT INTO filler VALUES (-1, 'after') RETURNING g;")
    assert rows == [["-1"]]
    # the cause is in the server's log, where archive-push's errors go
    rc, out, err = run(["docker", "logs", server])
    assert "FileWriteError" in out + err and "archive command failed" in out + err
    # and the segment that did not fit is never in the repository under a good name: pgBackRest
    # writes <segment>.pgbackrest.tmp and renames it only when complete
    failed = arch["last_failed_wal"]
    rc, listing, _ = run(
        ["docker", "exec", "--user", "postgres", server, "find", continuous.REPO_MOUNT, "-name", failed + "*"]
    )
    assert rc == 0 and [n for n in listing.split() if not n.endswith(".pgbackrest.tmp")] == []


def test_status_shows_the_failing_archive_red(server):
    db = {"container": server, "database": DB, "user": USER}
    rows, _ = status.continuous_checks(run, db, STANZA, True, 300, 30 * 3600, time.time())
    assert rows[0]["name"] == "WAL archiving" and rows[0]["state"] == "red"
    assert "archiving is FAILING" in rows[0]["detail"]
