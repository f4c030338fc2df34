"""Faults in the middle of a real dump, on a throwaway database big enough to catch mid-stream
(the scale-1 LMS data plus a ~200 MB filler table made server-side), and the snapshot's promise:
the manifest's counts are exactly the rows in the dump, while the database is being written to.
"""

import gzip
import json
import os
import re
import subprocess
import time

import pytest
from ansible.module_utils.datasafe import container, manifest
from backup_helpers import good_backups, tree_hashes
from harness import module_argv, write_args
from harness import run_module_process as run_module
from pgbed import CRITICAL_TABLES, ThrowawayPostgres, docker

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def big_pg():
    pg = ThrowawayPostgres()
    try:
        pg.start().seed(scale=1)
        pg.psql(
            "CREATE TABLE bulk_filler AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS payload "
            "FROM generate_series(1, 2500000) AS g"
        )
        yield pg
    finally:
        pg.remove()


def args_for(pg, backup_dir, **extra):
    args = dict(container=pg.container, database=pg.db, user=pg.user, backup_dir=backup_dir, tables=CRITICAL_TABLES)
    args.update(extra)
    return args


def start_backup(tmp_path, pg, bdir):
    path = write_args(tmp_path, args_for(pg, bdir), name="bg-args.json")
    return subprocess.Popen(module_argv("pg_backup", path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_partial(bdir, proc, timeout=60):
    """Block until the backup's temporary file has started growing (pg_dump is mid-stream)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the backup ended before it could be interrupted: %s" % proc.communicate()[0]
        if os.path.isdir(bdir):  # the dump's temporary file, not the roles dump's (written beside it)
            partial = [n for n in os.listdir(bdir) if n.endswith(".partial") and not n.endswith(".roles.partial")]
            if partial and os.path.getsize(os.path.join(bdir, partial[0])) > 64 * 1024:
                return partial[0]
        time.sleep(0.02)
    raise AssertionError("the temporary file never grew")


def previous_backup(tmp_path, pg, bdir):
    rc, result = run_module(tmp_path, "pg_backup", args_for(pg, bdir))
    assert rc == 0, result
    return result


def finish(proc):
    out, err = proc.communicate(timeout=120)
    return proc.returncode, json.loads(out) if out.strip() else {"stderr": err}


def test_pg_dump_killed_mid_stream_leaves_no_good_looking_file(big_pg, tmp_path):
    bdir = str(tmp_path / "backups")
    first = previous_backup(tmp_path, big_pg, bdir)
    before = tree_hashes(bdir)
    proc = start_backup(tmp_path, big_pg, bdir)
    wait_for_partial(bdir, proc)
    docker("exec", big_pg.container, "pkill", "-TERM", "-x", "pg_dump")
    rc, result = finish(proc)
    assert rc != 0 and result["stage"] == "pg_dump", result
    assert tree_hashes(bdir) == before  # the temporary file is gone, the earlier backup untouched
    assert [e["file"] for e in good_backups(bdir)] == [first["file"]]


def test_igzip_killed_mid_stream_is_named_and_leaves_no_good_looking_file(big_pg, tmp_path):
    # The image has igzip (Debian's isal), so pg_dump's output is compressed by igzip in a pipeline
    # inside the container; when igzip dies, the stage named is igzip (the cause), not pg_dump.
    bdir = str(tmp_path / "backups")
    first = previous_backup(tmp_path, big_pg, bdir)
    assert first["manifest"]["compressor"] == "igzip", first["manifest"]
    before = tree_hashes(bdir)
    proc = start_backup(tmp_path, big_pg, bdir)
    wait_for_partial(bdir, proc)
    docker("exec", big_pg.container, "pkill", "-KILL", "-x", "igzip")
    rc, result = finish(proc)
    assert rc != 0 and result["stage"] == "igzip" and "igzip exited" in result["msg"], result
    assert tree_hashes(bdir) == before
    assert [e["file"] for e in good_backups(bdir)] == [first["file"]]


def test_a_part_of_a_split_dump_killed_mid_stream_is_named_and_leaves_nothing(big_pg, tmp_path):
    # split always: the largest table's data is dumped by a second pg_dump into a file of its own
    # beside the first part; killed mid-stream, the backup fails naming that part, every partial
    # file is removed and the earlier backup is untouched.
    bdir = str(tmp_path / "backups")
    first = previous_backup(tmp_path, big_pg, bdir)
    before = tree_hashes(bdir)
    path = write_args(tmp_path, args_for(big_pg, bdir, split="always"), name="split-args.json")
    proc = subprocess.Popen(module_argv("pg_backup", path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None and time.monotonic() < deadline, "the part never started streaming"
        parts = [n for n in os.listdir(bdir) if n.endswith(".part1.partial")] if os.path.isdir(bdir) else []
        if parts and os.path.getsize(os.path.join(bdir, parts[0])) > 64 * 1024:
            break
        time.sleep(0.02)
    docker("exec", big_pg.container, "pkill", "-TERM", "-f", "^pg_dump .*--table=")
    rc, result = finish(proc)
    assert rc != 0 and result["stage"] == 'pg_dump (the data of "public"."bulk_filler")', result
    assert tree_hashes(bdir) == before
    assert [e["file"] for e in good_backups(bdir)] == [first["file"]]


def test_database_stopped_mid_run_leaves_no_good_looking_file(big_pg, tmp_path):
    bdir = str(tmp_path / "backups")
    first = previous_backup(tmp_path, big_pg, bdir)
    expected = big_pg.counts()
    before = tree_hashes(bdir)
    proc = start_backup(tmp_path, big_pg, bdir)
    try:
        wait_for_partial(bdir, proc)
        docker("stop", "-t", "5", big_pg.container)
        rc, result = finish(proc)
    finally:
        docker("start", big_pg.container)
    assert rc != 0 and result["stage"] in ("pg_dump", "count rows", "close snapshot"), result
    assert tree_hashes(bdir) == before
    assert [e["file"] for e in good_backups(bdir)] == [first["file"]]
    deadline = time.monotonic() + 60
    while docker("exec", big_pg.container, "pg_isready", "-q", check=False).returncode != 0:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert big_pg.counts() == expected  # the data is all still there


def dump_row_counts(path, tables):
    """Data lines of each table's COPY block in a plain gzip dump."""
    counts, current = {}, None
    start = re.compile(r"^COPY public\.(\w+) .* FROM stdin;$")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if current is None:
                match = start.match(line.rstrip("\n"))
                if match and match.group(1) in tables:
                    current = match.group(1)
                    counts[current] = 0
            elif line == "\\.\n":
                current = None
            else:
                counts[current] += 1
    return counts


def test_counts_come_from_the_dumps_own_snapshot_while_rows_are_being_written(big_pg, tmp_path):
    bdir = str(tmp_path / "backups")
    insert = (
        "INSERT INTO users (username, full_name, role, email) "
        "VALUES ('w-' || gen_random_uuid(), 'Writer', 'reception', 'w@example.invalid');\n"
        "SELECT pg_sleep(0.002);\n"
    )
    writer = subprocess.Popen(
        container.psql_argv(big_pg.container, big_pg.db, big_pg.user),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        writer.stdin.write(insert * 5)
        writer.stdin.flush()
        users_before = big_pg.counts()["users"]
        proc = start_backup(tmp_path, big_pg, bdir)
        while proc.poll() is None:
            writer.stdin.write(insert * 20)
            writer.stdin.flush()
        rc, result = finish(proc)
        writer.stdin.write(insert * 5)
    finally:
        writer.stdin.close()
        writer.wait()
    assert rc == 0, result
    users_after = big_pg.counts()["users"]
    m = manifest.load(result["manifest_path"])
    assert users_before < m["counts"]["users"] < users_after  # rows were written before, during and after
    assert dump_row_counts(result["path"], CRITICAL_TABLES) == m["counts"]
