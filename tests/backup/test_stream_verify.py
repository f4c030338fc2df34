"""The streamed verification's failure paths, on a real throwaway PostgreSQL with a real pg_dump:
a truncated or corrupt gzip stream, a well-formed gzip stream whose dump stopped early, a dump
that fails midway, and the compression process killed mid-stream. In every case the backup
fails naming the stage, no file is named good, and nothing half-done is left in the directory
(no temporary file, no backup name, no manifest); an earlier backup is untouched.

The faults are made by wrapping the engine's real pg_dump command in a small bash pipeline
(the destructive part is the stream, never the database).
"""

import os
import signal
import threading
import time

import pytest
from ansible.module_utils.datasafe import backup, backup_run
from backup_helpers import good_backups, tree_hashes
from pgbed import CRITICAL_TABLES

pytestmark = pytest.mark.slow

REAL_PG_DUMP_ARGV = backup.pg_dump_argv


def spec_for(pg, bdir, **extra):
    spec = dict(
        backup_dir=bdir,
        prefix="lms_backup",
        format="plain",
        compression="gzip",
        level=1,
        compress_on="container",
        container=pg.container,
        database=pg.db,
        user=pg.user,
        tables=CRITICAL_TABLES,
        lock_wait_timeout=60,
        nice=0,
        kind="manual",
        label="",
        app_revision=None,
        roles=False,
    )
    spec.update(extra)
    return spec


def wrap_pg_dump(monkeypatch, script):
    """Run the real pg_dump argv as ``"$@"`` inside ``bash -c script``."""

    def wrapped(*args, **kwargs):
        return ["bash", "-c", script, "fault", *REAL_PG_DUMP_ARGV(*args, **kwargs)]

    monkeypatch.setattr(backup, "pg_dump_argv", wrapped)


@pytest.fixture
def bdir(throwaway_pg, tmp_path):
    """A backup directory holding one good backup made by the unchanged engine."""
    path = str(tmp_path / "backups")
    os.makedirs(path, mode=0o700)
    data = backup.run_backup(spec_for(throwaway_pg, path))
    backup_run.write_manifest(data)
    assert [e["file"] for e in good_backups(path)] == [data["file"]]
    return path


def fails_cleanly(pg, bdir, stage, match, **extra):
    before = tree_hashes(bdir)
    good_before = [e["file"] for e in good_backups(bdir)]
    with pytest.raises(backup.BackupError, match=match) as caught:
        backup.run_backup(spec_for(pg, bdir, **extra))
    assert caught.value.stage == stage, caught.value
    assert tree_hashes(bdir) == before  # nothing new, nothing half-done, the earlier backup as it was
    assert [e["file"] for e in good_backups(bdir)] == good_before
    assert not backup.leftover_partials(bdir)
    return caught.value


def test_a_truncated_gzip_stream_is_never_named_good(throwaway_pg, bdir, monkeypatch):
    # The producer says it succeeded; only the streamed decompression sees the stream end early.
    wrap_pg_dump(monkeypatch, '"$@" | head -c 100000; exit 0')
    fails_cleanly(throwaway_pg, bdir, "verify", "truncated")


def test_a_corrupt_gzip_stream_is_never_named_good(throwaway_pg, bdir, monkeypatch):
    # One byte flipped 50000 bytes into the compressed stream (the rest passes unchanged).
    wrap_pg_dump(
        monkeypatch,
        '"$@" | { dd bs=50000 count=1 iflag=fullblock status=none; '
        'dd bs=1 count=1 status=none | tr "\\000-\\377" "\\377\\000-\\376"; cat; }; exit 0',
    )
    fails_cleanly(throwaway_pg, bdir, "verify", "corrupt|truncated|does not end")


def test_a_well_formed_stream_of_a_dump_that_stopped_early_is_never_named_good(throwaway_pg, bdir, monkeypatch):
    # What a separate compressor writes when pg_dump dies: a complete gzip stream of part of a dump.
    wrap_pg_dump(monkeypatch, '"$@" | gzip -dc | head -c 200000 | gzip -1; exit 0')
    fails_cleanly(throwaway_pg, bdir, "verify", "does not end with")


def test_a_dump_that_fails_midway_is_never_named_good(throwaway_pg, bdir, monkeypatch):
    # Part of the stream, then the producer fails: its exit status is checked.
    wrap_pg_dump(monkeypatch, '"$@" | head -c 100000; exit 3')
    fails_cleanly(throwaway_pg, bdir, "pg_dump", "exit status 3")


def _children_named(name):
    """This process's child processes with command ``name``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                stat = handle.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if comm == name and ppid == os.getpid():
            found.append(int(entry))
    return found


def test_the_compression_process_killed_mid_stream_is_never_named_good(throwaway_pg, bdir, monkeypatch):
    # Compression on the host in its own process (gzip); the stream pauses after its first
    # 128 KiB so the compressor is killed mid-stream, for real, with SIGKILL.
    wrap_pg_dump(monkeypatch, '"$@" | { dd bs=64k count=2 iflag=fullblock status=none; sleep 3; cat; }')
    killed = []

    def kill_the_compressor():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            partial = backup.leftover_partials(bdir)
            pids = _children_named("gzip") + _children_named("pigz")
            if partial and pids:
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
                killed.extend(pids)
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_the_compressor, daemon=True)
    killer.start()
    compressor = backup.host_compressor_argv("gzip", 1)[0]
    error = fails_cleanly(throwaway_pg, bdir, compressor, "exit status -9", compress_on="host")
    killer.join(5)
    assert killed, "the compressor was never seen running: %s" % error
