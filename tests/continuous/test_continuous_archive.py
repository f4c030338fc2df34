"""Retention and restore points on a real archiving server, with real pgBackRest.

One throwaway server of the test bed's pgBackRest image, shared by this module, archives exactly
as datasafe's override configures it (continuous.server_settings, render_conf) into a repository
on a host directory, as the role lays it out. Through the real modules (continuous_backup,
pg_backup, safe_command, in-process with ansible-core's harness):

- retention (repo1-retention-full, 2 here): a third full backup expires the first one and the WAL
  only it needed; the two kept full backups and every WAL segment they need stay, proven by
  recovering from the oldest kept one to a moment after it; with retention at its floor (1) the
  newest full backup and its differential one are kept, never nothing;
- a break-glass command through safe_command gets a named restore point first, and recovery to
  it has the rows the command deleted.
"""

import json
import os
import time
import uuid

import pytest
from ansible.module_utils.datasafe import breakglass, container, continuous, runner
from harness import run_module
from pgbed import docker, free_port, throwaway_labels

IMAGE = "datasafe/postgres:15-bookworm-pgbackrest"
USER, DB, STANZA = "lms_user", "lms_slncity", "archivetest"
HERE = os.path.dirname(os.path.abspath(__file__))
run = runner.run


def sql(name, text):
    return container.query(run, name, DB, USER, text)


def write_conf(conf, port, retention_full):
    path = os.path.join(conf, continuous.CONF_NAME)
    with open(path, "w") as handle:
        handle.write(continuous.render_conf(STANZA, port, USER, retention_full))
    os.chmod(path, 0o644)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if docker("image", "inspect", IMAGE, check=False).returncode != 0:
        pytest.fail("%s is missing: run testbed/setup.sh (testbed/build-continuous-image.sh builds it)" % IMAGE)
    root = tmp_path_factory.mktemp("continuous-archive")
    name = "datasafe-test-archive-%s" % uuid.uuid4().hex[:8]
    repo, conf, backups = root / "repo", root / "conf", root / "backups"
    for path, mode in ((repo, 0o700), (conf, 0o755), (backups, 0o700)):
        path.mkdir()
        path.chmod(mode)
    os.chown(repo, *continuous.image_postgres_ids(run, IMAGE))  # the role makes it the image's postgres user's
    port = free_port()
    write_conf(str(conf), port, 2)
    command = continuous.with_settings(
        ["postgres", "-c", "listen_addresses=127.0.0.1"], continuous.server_settings(STANZA)
    )
    labels = throwaway_labels()
    docker("volume", "create", *labels, name)
    recovered = []
    try:
        docker(
            "run", "-d", "--name", name, "--network", "host", *labels,
            "-e", "PGPORT=%d" % port, "-e", "POSTGRES_USER=" + USER, "-e", "POSTGRES_DB=" + DB,
            "-e", "POSTGRES_PASSWORD=throwaway-test-password",
            "--mount", "type=volume,source=%s,target=/var/lib/postgresql/data" % name,
            "--mount", "type=bind,source=%s,target=%s" % (repo, continuous.REPO_MOUNT),
            "--mount", "type=bind,source=%s,target=%s,readonly" % (conf, continuous.CONF_MOUNT),
            IMAGE, *command,
        )  # fmt: skip
        deadline = time.monotonic() + 180
        while run(["docker", "exec", name, "pg_isready", "-q", "-h", "127.0.0.1", "-U", USER, "-d", DB])[0] != 0:
            assert time.monotonic() < deadline, "the throwaway server did not start"
            time.sleep(0.5)
        time.sleep(1)
        sql(name, "CREATE TABLE probe (id serial PRIMARY KEY, note text NOT NULL);")
        yield {
            "name": name,
            "repo": str(repo),
            "conf": str(conf),
            "backups": str(backups),
            "port": port,
            "root": str(root),
            "labels": labels,
            "recovered": recovered,
        }
    finally:
        for other in recovered + [name]:
            docker("rm", "--force", other, check=False)
            docker("volume", "rm", other, check=False)


def backup(server, kind):
    result = run_module("continuous_backup", container=server["name"], stanza=STANZA, type=kind)
    assert not result["failed"], result
    assert result["verify"] is not None  # continuous.verify raised had it found any damage
    return result["backup"]["label"]


def write_and_archive(server, note):
    """A committed row, in a WAL segment that reaches the repository; its id and commit time."""
    row = sql(server["name"], "INSERT INTO probe(note) VALUES ('%s') RETURNING id, clock_timestamp()::text;" % note)
    segment = sql(server["name"], "SELECT pg_walfile_name(pg_current_wal_lsn());")[0][0]
    sql(server["name"], "SELECT pg_switch_wal();")
    deadline = time.monotonic() + 180
    while sql(server["name"], "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver;")[0][0] < segment:
        assert time.monotonic() < deadline, "segment %s was not archived" % segment
        time.sleep(0.5)
    return int(row[0][0]), row[0][1]


def stanza_info(server):
    return continuous.info(run, server["name"], STANZA)


def archived_segments(server):
    """The WAL segment names (24 hex digits) in the repository, as the host sees them."""
    found = set()
    for _root, _dirs, files in os.walk(os.path.join(server["repo"], "archive", STANZA)):
        found |= {f[:24] for f in files if len(f) > 25 and f[24] == "-"}
    return found


def recover(server, suffix, kind, value):
    name = "%s-rec-%s" % (server["name"], suffix)
    server["recovered"].append(name)
    continuous.recover(
        run, IMAGE, STANZA, server["repo"], server["conf"], name, free_port(), USER, DB, [],
        kind=kind, value=value, labels=server["labels"][1::2], timeout=600,
    )  # fmt: skip
    ids = [int(row[0]) for row in sql(name, "SELECT id FROM probe ORDER BY id;")]
    docker("rm", "--force", name, check=False)
    docker("volume", "rm", name, check=False)
    return ids


def test_retention_expires_the_oldest_full_backup_and_only_the_wal_it_alone_needed(server):
    first = backup(server, "full")
    write_and_archive(server, "after the first full backup")
    second = backup(server, "full")
    kept_row, _ = write_and_archive(server, "between the second and third full backup")
    time.sleep(1)
    between = sql(server["name"], "SELECT clock_timestamp()::text;")[0][0]
    time.sleep(1)
    later_row, _ = write_and_archive(server, "just before the third full backup")
    segments_before = archived_segments(server)
    third = backup(server, "full")

    info = stanza_info(server)
    labels = [b["label"] for b in info["backup"]]
    assert labels == [second, third], "retention 2 keeps the two newest full backups, the first expires"
    assert first not in labels
    oldest_needed = next(b for b in info["backup"] if b["label"] == second)["archive"]["start"]
    after = archived_segments(server)
    # the WAL only the expired backup needed is gone, every segment from the oldest kept backup on stays
    assert {s for s in segments_before if s[8:] < oldest_needed[8:]}
    assert not {s for s in after if s[8:] < oldest_needed[8:]}
    assert {s for s in segments_before if s[8:] >= oldest_needed[8:]} <= after
    # and it is usable: recovery from the oldest kept full backup to a moment between it and the
    # newest one replays that WAL and has the row committed before the moment, not the one after
    ids = recover(server, "retained", "time", between + "+00" if "+" not in between else between)
    assert kept_row in ids and later_row not in ids


def test_retention_at_its_floor_keeps_the_newest_full_backup_and_its_differential(server):
    with pytest.raises(continuous.ContinuousError, match="at least 1"):
        continuous.render_conf(STANZA, server["port"], USER, 0)
    write_and_archive(server, "before the differential backup")
    diff = backup(server, "diff")
    newest_full = [b["label"] for b in stanza_info(server)["backup"] if b["type"] == "full"][-1]
    write_conf(server["conf"], server["port"], 1)
    try:
        continuous.pgbackrest(run, server["name"], STANZA, ["expire"], "expire")
        info = stanza_info(server)
        assert [(b["label"], b["type"]) for b in info["backup"]] == [(newest_full, "full"), (diff, "diff")]
        # the WAL the kept backups need is all there and whole (verify raises naming any damage)
        continuous.verify(run, server["name"], STANZA)
        start = info["backup"][0]["archive"]["start"]
        assert min(archived_segments(server))[8:] >= start[8:]
    finally:
        write_conf(server["conf"], server["port"], 2)


def test_a_break_glass_command_gets_a_restore_point_first_and_recovery_to_it_has_the_rows(server, tmp_path):
    write_and_archive(server, "kept by the restore point")
    rows_before = int(sql(server["name"], "SELECT count(*) FROM probe;")[0][0])
    dumped = run_module(
        "pg_backup", container=server["name"], database=DB, user=USER, backup_dir=server["backups"], tables=["probe"]
    )
    assert not dumped["failed"], dumped
    with open(os.path.join(HERE, "breakglass_delete_all.sql")) as handle:
        statement = handle.read()
    args = dict(
        argv=["docker", "exec", "-i", server["name"], "psql", "-X", "-v", "ON_ERROR_STOP=1", "-U", USER, "-d", DB],
        stdin=statement,
        allow_destructive=True,
        reason="test: a restore point before a break-glass command",
        backup_dir=server["backups"],
        change_log=str(tmp_path / "change-log.txt"),
        change_log_json=str(tmp_path / "change-log.jsonl"),
        container=server["name"],
        database=DB,
        user=USER,
    )
    # check mode: nothing runs, no restore point is created
    dry = run_module("safe_command", args, check_mode=True)
    assert not dry["failed"] and dry["breakglass"]["restore_point"] is None, dry
    assert dry["breakglass"]["restore_point_skipped"] == "check mode"
    assert int(sql(server["name"], "SELECT count(*) FROM probe;")[0][0]) == rows_before

    result = run_module("safe_command", args)
    assert not result["failed"], result
    point = result["breakglass"]["restore_point"]
    assert point.startswith("datasafe-break-glass-"), result
    assert sql(server["name"], "SELECT count(*) FROM probe;")[0][0] == "0"
    logged = [json.loads(line) for line in (tmp_path / "change-log.jsonl").read_text().splitlines()]
    assert logged[-1]["restore_point"] == point
    write_and_archive(server, "after the break-glass command")
    assert len(recover(server, "breakglass", "name", point)) == rows_before


def test_without_a_database_a_break_glass_command_says_it_has_no_restore_point():
    found = {"backup": "/x"}
    assert breakglass.restore_point(None, found, None) is None
    assert found["restore_point"] is None and "no database given" in found["restore_point_skipped"]
    assert breakglass.restore_point(None, None, ("c", "d", "u")) is None  # no break-glass, nothing to do
