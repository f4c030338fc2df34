"""Pure-Python tests of the backup engine: names, options, manifests, retention, metrics, shrink flags."""

import datetime
import gzip
import os

import pytest
from ansible.module_utils.datasafe import backup, backup_run, manifest, retention
from backup_helpers import fake_backup, utc
from pgbed import flip_byte


def test_names_follow_the_protocol():
    when = datetime.datetime(2026, 11, 23, 2, 0, 0)
    assert backup.backup_name("lms_backup", when, "plain", "gzip") == "lms_backup_20261123_020000.sql.gz"
    assert backup.backup_name("BEFORE_UPDATE", when, "plain", "zstd") == "BEFORE_UPDATE_20261123_020000.sql.zst"
    assert backup.backup_name("x", when, "custom", "gzip") == "x_20261123_020000.dump"


@pytest.mark.parametrize(
    "args, message",
    [
        (("custom", "zstd", None, "auto"), "custom format compresses with gzip only"),
        (("plain", "zstd", None, "container"), "no zstd"),
        (("plain", "gzip", 0, "auto"), "out of range"),
        (("plain", "zstd", 22, "auto"), "out of range"),
        (("tar", "gzip", None, "auto"), "format must be"),
    ],
)
def test_bad_option_combinations_are_refused_with_a_reason(args, message):
    with pytest.raises(ValueError, match=message):
        backup.check_options(*args)


def test_option_defaults_are_the_measured_ones():
    # gzip 1 since issue #24 (CPU per MB of pg_dump's zlib, docs/measurements.md); it was 3
    assert backup.check_options("plain", "gzip", None, "auto") == (1, "container")
    assert backup.check_options("plain", "zstd", None, "auto") == (3, "host")


def test_pg_dump_compresses_inside_the_container_by_default():
    argv = backup.pg_dump_argv("c", "db", "u", "00000003-1", "plain", "gzip", 1, "container", 120)
    assert argv[:3] == ["docker", "exec", "c"]
    assert argv[3:] == [
        "pg_dump",
        "-U",
        "u",
        "-d",
        "db",
        "--snapshot=00000003-1",
        "--lock-wait-timeout=120s",
        "-Z",
        "1",
    ]


def test_a_niced_pg_dump_runs_under_nice_inside_the_container():
    # docker exec does not pass the caller's niceness on: nice must be in the argv run inside.
    argv = backup.pg_dump_argv("c", "db", "u", "00000003-1", "plain", "gzip", 3, "container", 0, nice=10)
    assert argv[:7] == ["docker", "exec", "c", "nice", "-n", "10", "pg_dump"]
    assert backup.pg_dump_argv("c", "db", "u", "s", "plain", "gzip", 3, "container", 0)[3] == "pg_dump"


def test_link_never_replaces_an_existing_file(tmp_path):
    (tmp_path / "b_1.sql.gz").write_bytes(b"old")
    (tmp_path / "b.sql.gz").write_bytes(b"older")
    tmp = tmp_path / ".b.sql.gz.partial"
    tmp.write_bytes(b"new")
    assert backup.link_no_clobber(str(tmp), str(tmp_path), "b.sql.gz") == "b_2.sql.gz"
    assert (tmp_path / "b.sql.gz").read_bytes() == b"older" and (tmp_path / "b_1.sql.gz").read_bytes() == b"old"
    assert not tmp.exists()


def test_list_backups_marks_everything_that_is_not_a_good_backup(tmp_path):
    d = str(tmp_path)
    fake_backup(d, "lms_backup_20261120_020000.sql.gz", utc(2026, 11, 20, 2))
    fake_backup(d, "lms_backup_20261121_020000.sql.gz", utc(2026, 11, 21, 2), verified=False)
    (tmp_path / "lms_backup_20261122_020000.sql.gz").write_bytes(b"no manifest")
    (tmp_path / ".lms_backup_20261123_020000.sql.gz.partial").write_bytes(b"temporary")
    gone = fake_backup(d, "lms_backup_20261119_020000.sql.gz", utc(2026, 11, 19, 2))
    os.unlink(gone)
    entries = {e["file"]: e for e in manifest.list_backups(d)}
    assert sorted(entries) == [
        "lms_backup_20261119_020000.sql.gz",
        "lms_backup_20261120_020000.sql.gz",
        "lms_backup_20261121_020000.sql.gz",
        "lms_backup_20261122_020000.sql.gz",
    ]
    assert entries["lms_backup_20261120_020000.sql.gz"]["problem"] is None
    assert "verified" in entries["lms_backup_20261121_020000.sql.gz"]["problem"]
    assert "no manifest" in entries["lms_backup_20261122_020000.sql.gz"]["problem"]
    assert "missing" in entries["lms_backup_20261119_020000.sql.gz"]["problem"]
    assert manifest.newest_verified(d)["file"] == "lms_backup_20261120_020000.sql.gz"


def test_a_flipped_byte_is_reported_and_never_counts_as_the_newest_good_backup(tmp_path):
    d = str(tmp_path)
    fake_backup(d, "lms_backup_20261120_020000.sql.gz", utc(2026, 11, 20, 2))
    newest = fake_backup(d, "lms_backup_20261121_020000.sql.gz", utc(2026, 11, 21, 2))
    flip_byte(newest, 20, mask=0x01)
    entry = [e for e in manifest.list_backups(d) if e["path"] == newest][0]
    problems = manifest.verify_file(entry)
    assert problems and "sha256" in problems[0]
    assert manifest.newest_verified(d)["file"] == "lms_backup_20261120_020000.sql.gz"


def test_a_backup_the_caller_just_verified_is_not_hashed_again_and_others_still_are(tmp_path, monkeypatch):
    d = str(tmp_path)
    older = fake_backup(d, "lms_backup_20261120_020000.sql.gz", utc(2026, 11, 20, 2))
    newest = fake_backup(d, "lms_backup_20261121_020000.sql.gz", utc(2026, 11, 21, 2))
    hashed = []
    real = manifest.verify_file
    monkeypatch.setattr(manifest, "verify_file", lambda entry: hashed.append(entry["path"]) or real(entry))
    assert manifest.newest_verified(d, known_good=(newest,))["path"] == newest
    assert hashed == []
    assert manifest.newest_verified(d, known_good=(older,))["path"] == newest
    assert hashed == [newest]


def test_newest_verified_filters_by_database_kind_and_age(tmp_path):
    d = str(tmp_path)
    fake_backup(d, "a_20261120_020000.sql.gz", utc(2026, 11, 20, 2), kind="scheduled")
    fake_backup(d, "b_20261121_020000.sql.gz", utc(2026, 11, 21, 2), kind="pre-change")
    fake_backup(d, "c_20261122_020000.sql.gz", utc(2026, 11, 22, 2), database="other")
    now = utc(2026, 11, 22, 3)
    assert manifest.newest_verified(d, now=now)["file"] == "c_20261122_020000.sql.gz"
    assert manifest.newest_verified(d, database="lms_slncity", now=now)["file"] == "b_20261121_020000.sql.gz"
    assert manifest.newest_verified(d, database="lms_slncity", kind="scheduled", now=now)["file"] == (
        "a_20261120_020000.sql.gz"
    )
    assert manifest.newest_verified(d, kind=["pre-change"], now=now)["file"] == "b_20261121_020000.sql.gz"
    assert manifest.newest_verified(d, database="lms_slncity", max_age_seconds=3600, now=now) is None


def _two_weeks(d, now):
    """Fourteen nightly backups (02:00) and four pre-change backups, the newest last night."""
    names = []
    for age in range(14, 0, -1):
        when = (now - datetime.timedelta(days=age)).replace(hour=2, minute=0, second=0)
        names.append(fake_backup(d, "lms_backup_%s.sql.gz" % when.strftime("%Y%m%d_%H%M%S"), when))
    for age in (40, 35, 20, 2):
        when = (now - datetime.timedelta(days=age)).replace(hour=10, minute=15, second=0)
        fake_backup(d, "BEFORE_UPDATE_%s.sql.gz" % when.strftime("%Y%m%d_%H%M%S"), when, kind="pre-change")
    return names


def test_retention_over_two_weeks_keeps_seven_days_and_prunes_the_rest(tmp_path):
    d, now = str(tmp_path), utc(2026, 11, 23, 2, 30)
    _two_weeks(d, now)
    decided = retention.plan(
        manifest.list_backups(d), now, days=7, min_keep=3, pre_change_days=30, pre_change_min_keep=2
    )
    removed = sorted(e["file"] for e, _ in decided["remove"])
    # Nov 16 02:00 is 7 days and 30 minutes old: pruned; pre-change backups older than 30 days
    # beyond the newest two: pruned.
    assert removed == ["BEFORE_UPDATE_20261014_101500.sql.gz", "BEFORE_UPDATE_20261019_101500.sql.gz"] + [
        "lms_backup_202611%02d_020000.sql.gz" % day for day in range(9, 17)
    ]
    kept = sorted(e["file"] for e, _ in decided["keep"])
    assert kept == ["BEFORE_UPDATE_20261103_101500.sql.gz", "BEFORE_UPDATE_20261121_101500.sql.gz"] + [
        "lms_backup_202611%02d_020000.sql.gz" % day for day in range(17, 23)
    ]
    # the pre-change policy's floor keeps a 35-day-old one when only two are younger
    floor = retention.plan(manifest.list_backups(d), now, days=7, pre_change_days=30, pre_change_min_keep=3)
    assert "BEFORE_UPDATE_20261019_101500.sql.gz" in [e["file"] for e, _ in floor["keep"]]


def test_retention_tiers_and_floor(tmp_path):
    d, now = str(tmp_path), utc(2026, 11, 23, 2, 30)  # a Monday
    _two_weeks(d, now)
    decided = retention.plan(
        manifest.list_backups(d), now, days=1, weekly=2, monthly=0, min_keep=2, pre_change_days=1, pre_change_min_keep=1
    )
    kept = {e["file"]: why for e, why in decided["keep"]}
    # the newest of this ISO week (W48 started today: none) and of last week (W47: Sun 22nd)
    assert "newest of week 2026-W47" in kept["lms_backup_20261122_020000.sql.gz"]
    assert "within the newest 2" in kept["lms_backup_20261121_020000.sql.gz"]
    assert sorted(kept) == [
        "BEFORE_UPDATE_20261121_101500.sql.gz",
        "lms_backup_20261121_020000.sql.gz",
        "lms_backup_20261122_020000.sql.gz",
    ]
    monthly = retention.plan(manifest.list_backups(d), now, days=1, monthly=2, min_keep=1)
    kept = {e["file"]: why for e, why in monthly["keep"]}
    assert "newest of month 2026-11" in kept["lms_backup_20261122_020000.sql.gz"]


def test_retention_never_prunes_the_newest_good_backup_or_anything_unverified(tmp_path):
    d, now = str(tmp_path), utc(2026, 11, 23, 2, 30)
    old = fake_backup(d, "lms_backup_20260101_020000.sql.gz", utc(2026, 1, 1, 2))
    (tmp_path / "lms_backup_20250101_020000.sql.gz").write_bytes(b"unknown file")
    decided = retention.plan(manifest.list_backups(d), now, days=1, min_keep=1)
    assert not decided["remove"]
    assert [e["path"] for e, _ in decided["keep"]] == [old]
    assert [e["file"] for e, _ in decided["ignored"]] == ["lms_backup_20250101_020000.sql.gz"]


def test_shrink_is_flagged_by_size_and_by_lost_rows(tmp_path):
    previous = {
        "manifest": {
            "file": "prev.sql.gz",
            "format": "plain",
            "compression": "gzip",
            "size": 1000,
            "counts": {"visits": 100, "users": 5},
        }
    }
    assert backup.shrink_problems(previous, 900, {"visits": 100, "users": 5}, "plain", "gzip", 0.5) == []
    size = backup.shrink_problems(previous, 400, {"visits": 100, "users": 5}, "plain", "gzip", 0.5)
    assert len(size) == 1 and "under 50%" in size[0]
    rows = backup.shrink_problems(previous, 900, {"visits": 90, "users": 5}, "plain", "gzip", 0.5)
    assert len(rows) == 1 and "visits has 90 rows, 10 fewer" in rows[0]
    assert backup.shrink_problems(previous, 10, {}, "plain", "zstd", 0.5) == []  # sizes of other formats differ
    assert backup.shrink_problems(None, 10, {}, "plain", "gzip", 0.5) == []


def test_metrics_keep_the_last_success_across_a_failure(tmp_path):
    path = str(tmp_path / "datasafe_backup.prom")
    backup_run.record_run(path, "lms", "scheduled", True, 1000.0, 12.5, size=4096, verified=True)
    backup_run.record_run(path, "lms", "scheduled", False, 2000.0, 1.0)
    text = open(path).read()
    assert 'datasafe_backup_last_success_timestamp_seconds{database="lms",kind="scheduled"} 1000.000' in text
    assert 'datasafe_backup_last_run_timestamp_seconds{database="lms",kind="scheduled"} 2000.000' in text
    assert 'datasafe_backup_last_run_success{database="lms",kind="scheduled"} 0' in text
    assert 'datasafe_backup_last_size_bytes{database="lms",kind="scheduled"} 4096' in text
    assert text.count("# TYPE datasafe_backup_last_run_success gauge") == 1


def test_manifest_write_is_atomic_and_private(tmp_path):
    path = str(tmp_path / "x.sql.gz.json")
    manifest.write(path, {"a": 1})
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert os.listdir(tmp_path) == ["x.sql.gz.json"]


# The streamed pipeline and verification with real processes (no database): which stage a
# failure names, and what the in-flight check refuses.


def _stream(tmp_path, argvs, stages, verifier=None):
    fd = os.open(str(tmp_path / "out"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        return backup.stream_to_file(argvs, fd, stages, verifier)
    finally:
        os.close(fd)


def test_a_killed_compressor_is_named_not_the_dumps_broken_pipe(tmp_path):
    producer = ["bash", "-c", "yes 'INSERT INTO t VALUES (1);' | head -c 50000000"]
    compressor = ["bash", "-c", "head -c 1000 >/dev/null; kill -KILL $$"]
    with pytest.raises(backup.BackupError) as caught:
        _stream(tmp_path, [producer, compressor], ["pg_dump", "gzip"])
    assert caught.value.stage == "gzip" and "exit status -9" in str(caught.value)


def _fake_tools(tmp_path, monkeypatch, pg_dump, igzip):
    """pg_dump and igzip as scripts on PATH, to run the in-container pipeline's own bash script."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("pg_dump", pg_dump), ("igzip", igzip)):
        (bin_dir / name).write_text("#!/bin/bash\n" + body + "\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (bin_dir, os.environ["PATH"]))
    argv = backup.pg_dump_argv("c", "db", "u", "00000003-1", "plain", "gzip", 1, "container", 0, compressor="igzip")
    assert argv[:4] == ["docker", "exec", "c", "bash"] and "-Z" not in argv
    return argv[3:]  # what docker exec runs in the container


def test_the_in_container_igzip_pipeline_passes_pg_dumps_arguments_and_names_a_failing_igzip(tmp_path, monkeypatch):
    dump = 'echo "args: $*" >&2; head -c 200000 /dev/zero'
    script = _fake_tools(tmp_path, monkeypatch, dump, "cat >/dev/null; exit 7")
    with pytest.raises(backup.BackupError) as caught:
        _stream(tmp_path, [script], ["pg_dump"])
    assert caught.value.stage == "igzip" and "igzip exited 7 (pg_dump " in str(caught.value)
    assert "args: -U u -d db --snapshot=00000003-1" in str(caught.value)  # positional, not interpolated


def test_the_in_container_igzip_pipeline_names_a_failing_pg_dump(tmp_path, monkeypatch):
    script = _fake_tools(tmp_path, monkeypatch, "echo 'pg_dump: error: no' >&2; exit 3", "gzip -c -1")
    with pytest.raises(backup.BackupError) as caught:
        _stream(tmp_path, [script], ["pg_dump"])
    assert caught.value.stage == "pg_dump" and "exit status 3: pg_dump: error: no" in str(caught.value)


def test_the_in_container_igzip_pipeline_streams_gzip_when_both_succeed(tmp_path, monkeypatch):
    script = _fake_tools(tmp_path, monkeypatch, "printf 'SELECT 1;\\n'", "gzip -c -1")
    sha, size = _stream(tmp_path, [script], ["pg_dump"])
    assert gzip.decompress((tmp_path / "out").read_bytes()) == b"SELECT 1;\n" and size > 0 and len(sha) == 64


def test_a_producer_that_fails_is_named_when_its_compressor_ends_normally(tmp_path):
    producer = ["bash", "-c", "printf 'COPY t FROM stdin;\\n'; exit 4"]
    with pytest.raises(backup.BackupError) as caught:
        _stream(tmp_path, [producer, ["gzip", "-c", "-1"]], ["pg_dump", "gzip"])
    assert caught.value.stage == "pg_dump" and "exit status 4" in str(caught.value)


@pytest.mark.parametrize(
    ("script", "problem"),
    [
        ("printf 'SELECT 1;\\n%s\\n' \"$1\" | gzip -c | head -c 20", "truncated"),  # cut inside the stream
        ("printf 'SELECT 1;\\n' | gzip -c", "does not end with"),  # complete gzip, no trailer
        ("printf 'not gzip at all, not even close to it\\n'", "corrupt"),
    ],
)
def test_the_streamed_check_refuses_what_a_second_pass_would(tmp_path, script, problem):
    verifier = backup.StreamVerifier("gzip")
    verifier.start()
    _stream(tmp_path, [["bash", "-c", script, "dump", backup.TRAILER.decode()]], ["pg_dump"], verifier)
    with pytest.raises(backup.BackupError, match=problem) as caught:
        verifier.finish()
    assert caught.value.stage == "verify"


def test_the_streamed_check_accepts_a_complete_multi_member_dump(tmp_path):
    script = "{ printf 'SELECT 1;\\n' | gzip -c; printf '%s\\n' \"$1\" | gzip -c; }"  # two gzip members
    verifier = backup.StreamVerifier("gzip")
    verifier.start()
    _stream(tmp_path, [["bash", "-c", script, "dump", backup.TRAILER.decode()]], ["pg_dump"], verifier)
    checks, size = verifier.finish()
    assert size == len("SELECT 1;\n") + len(backup.TRAILER) + 1 and any("trailer" in c for c in checks)
