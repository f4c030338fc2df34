"""pg_backup and backup_retention against a real throwaway PostgreSQL (scale 1), run as real processes.

Every failure test hashes the backup directory before and after: no earlier backup is touched,
and no file that looks like a good backup appears.
"""

import fcntl
import gzip
import json
import os
import subprocess
import uuid

import pytest
from ansible.module_utils.datasafe import backup, container, manifest, restore
from backup_helpers import REPO, good_backups, tree_hashes
from harness import run_module_process as run_module
from pgbed import CRITICAL_TABLES, flip_byte

pytestmark = pytest.mark.slow


@pytest.fixture
def bdir(tmp_path):
    d = tmp_path / "backups"
    return str(d)


def args_for(pg, backup_dir, **extra):
    args = dict(
        container=pg.container,
        database=pg.db,
        user=pg.user,
        backup_dir=backup_dir,
        tables=CRITICAL_TABLES,
        app_dir=REPO,
    )
    args.update(extra)
    return args


def restore_into_new_database(pg, path, fmt="plain", compression="gzip", how="protocol"):
    """Restore ``path`` into a new database beside the original; returns its name. ``how``:
    ``protocol`` (decompress | psql, or pg_restore for a custom archive) or ``datasafe`` (the
    restore's own pipeline for a plain dump: one transaction, committed only after the
    decompressor read the whole stream)."""
    target = "restore_%s" % uuid.uuid4().hex[:8]
    subprocess.run(["docker", "exec", pg.container, "createdb", "-U", pg.user, target], check=True)
    if how == "datasafe":
        with open(path, "rb") as handle:
            argv = restore.restore_argv(pg.container, pg.user, target, fmt, compression)
            subprocess.run(argv, stdin=handle, check=True, capture_output=True)
    elif fmt == "custom":
        argv = container.docker_exec(
            pg.container, ["pg_restore", "-U", pg.user, "-d", target, "--exit-on-error"], interactive=True
        )
        with open(path, "rb") as handle:
            subprocess.run(argv, stdin=handle, check=True, capture_output=True)
    else:
        if compression == "gzip":
            with gzip.open(path, "rb") as handle:
                sql = handle.read()
        elif compression == "zstd":
            sql = subprocess.run(["zstd", "-dc", path], check=True, capture_output=True).stdout
        else:
            with open(path, "rb") as handle:
                sql = handle.read()
        subprocess.run(container.psql_argv(pg.container, target, pg.user), input=sql, check=True, capture_output=True)
    return target


def restore_counts(pg, path, fmt="plain", compression="gzip"):
    """Restore ``path`` into a new database beside the original and count its critical tables."""
    target = restore_into_new_database(pg, path, fmt, compression)
    return container.count_rows(pg.run, pg.container, target, pg.user, CRITICAL_TABLES)


def test_backup_restores_into_a_fresh_database_with_identical_counts(throwaway_pg, tmp_path, bdir):
    pg = throwaway_pg
    rc, result = run_module(tmp_path, "pg_backup", args_for(pg, bdir, label="roundtrip"))
    assert rc == 0, result
    m = manifest.load(result["manifest_path"])
    assert m["counts"] == pg.counts() == result["counts"]
    assert m["verified"] is True and m["kind"] == "manual" and m["label"] == "roundtrip"
    assert m["file"] == os.path.basename(result["path"]) and m["file"].startswith("lms_backup_")
    assert m["file"].endswith(".sql.gz") and m["format"] == "plain" and m["compression"] == "gzip"
    assert m["server_version"].startswith("15.") and m["database"] == pg.db and m["container"] == pg.container
    assert len(m["app_revision"]) == 40
    assert m["compressor"] == "igzip" and m["compressed_on"] == "container"  # the test image has isal
    assert m["sha256"] == manifest.sha256_file(result["path"]) and m["size"] == os.path.getsize(result["path"])
    assert any("trailer" in c for c in m["checks"]) and any("decompression" in c for c in m["checks"])
    for key in ("start", "end", "verified_at"):
        assert manifest.parse_time(m[key]).tzinfo is not None
    assert oct(os.stat(bdir).st_mode & 0o777) == "0o700"
    for name in (m["file"], m["file"] + ".json"):
        assert oct(os.stat(os.path.join(bdir, name)).st_mode & 0o777) == "0o600"
    assert restore_counts(pg, result["path"]) == m["counts"]
    assert pg.counts() == m["counts"]  # the original is untouched


@pytest.mark.parametrize(
    "extra",
    [
        {"compression": "zstd"},
        {"format": "custom"},
        {"compress_on": "host"},
        {"nice": 19},  # pg_dump under the container's coreutils nice, the module itself reniced
        {"container_compressor": "pg_dump"},  # pg_dump's own -Z instead of igzip
        {"container_compressor": "igzip", "nice": 19, "compress_level": 3},
    ],
)
def test_other_formats_restore_with_identical_counts(throwaway_pg, tmp_path, bdir, extra):
    pg = throwaway_pg
    rc, result = run_module(tmp_path, "pg_backup", args_for(pg, bdir, kind="pre-change", **extra))
    assert rc == 0, result
    assert result["file"].startswith("BEFORE_UPDATE_")
    m = result["manifest"]
    if "container_compressor" in extra:
        assert m["compressor"] == extra["container_compressor"], m
    assert restore_counts(pg, result["path"], m["format"], m["compression"]) == m["counts"] == pg.counts()


# Every table's rows, as a digest per table: count and the sum of a hash of each row's text.
TABLE_DIGESTS_SQL = (
    "SELECT format('%I.%I', n.nspname, c.relname) || ' ' || (xpath('/row/d/text()', query_to_xml(format("
    "'SELECT count(*) || ''/'' || coalesce(sum(hashtext(t::text)), 0) AS d FROM %I.%I t', n.nspname, c.relname),"
    " false, true, '')))[1]::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' ORDER BY 1"
)
# What else a dump carries, counted: indexes, constraints, triggers, sequences' next values.
SCHEMA_DIGEST_SQL = (
    "SELECT (SELECT count(*) FROM pg_indexes WHERE schemaname !~ '^pg_'),"
    " (SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname !~ '^pg_'),"
    " (SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal),"
    " (SELECT string_agg(schemaname || '.' || sequencename || '=' || coalesce(last_value, 0), ','"
    " ORDER BY schemaname, sequencename)"
    " FROM pg_sequences)"
)


def restored_digests(pg, path, how):
    """The digests of the gzip dump ``path`` restored into a new database (``how``: see
    :func:`restore_into_new_database`)."""
    return database_digests(pg, restore_into_new_database(pg, path, how=how))


def database_digests(pg, db):
    argv = container.psql_argv(pg.container, db, pg.user, extra=["-A", "-t"])
    out = subprocess.run(
        argv, input=TABLE_DIGESTS_SQL + ";\n" + SCHEMA_DIGEST_SQL + ";\n", check=True, capture_output=True, text=True
    )
    return out.stdout


def test_a_dump_split_over_three_sessions_restores_to_the_same_database(throwaway_pg, tmp_path, bdir):
    pg = throwaway_pg
    rc, whole = run_module(tmp_path, "pg_backup", args_for(pg, bdir, split="never"))
    assert rc == 0, whole
    rc, split = run_module(tmp_path, "pg_backup", args_for(pg, bdir, split="always"))
    assert rc == 0, split
    m = split["manifest"]
    assert whole["manifest"]["parts"] is None
    assert m["parts"] == [
        'the schema and the data of every table but "public"."test_results"',
        'the data of "public"."test_results"',
        "the indexes, constraints and triggers",
    ]
    assert any("3 parts" in c for c in m["checks"]), m["checks"]
    assert m["sha256"] == manifest.sha256_file(split["path"]) and m["size"] == os.path.getsize(split["path"])
    assert not [n for n in os.listdir(bdir) if n.endswith(".partial")]
    with gzip.open(split["path"], "rb") as handle:
        assert handle.read().count(b"-- PostgreSQL database dump complete") == 3
    live = database_digests(pg, pg.db)
    assert "public.test_results %d/" % pg.counts()["test_results"] in live, live
    assert restored_digests(pg, split["path"], "protocol") == restored_digests(pg, whole["path"], "protocol") == live
    assert restored_digests(pg, split["path"], "datasafe") == live
    assert m["counts"] == whole["manifest"]["counts"] == pg.counts()


def test_the_split_names_its_table_by_a_pattern_that_matches_it_alone(throwaway_pg):
    # pg_dump reads --table as a pattern; the split's is double-quoted, so a dot, a double quote,
    # a wildcard and upper case in the names are taken literally (the sibling table stays out).
    pg = throwaway_pg
    sql = os.path.join(os.path.dirname(__file__), "sql")
    pg.psql(open(os.path.join(sql, "split_odd_names.sql")).read())
    try:
        pattern = backup.dump_pattern("Odd.Schema", 'Big "T" *.x')
        argv = container.docker_exec(
            pg.container, ["pg_dump", "-U", pg.user, "-d", pg.db, "--section=data", "--table=" + pattern]
        )
        out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
        copies = [line for line in out.splitlines() if line.startswith("COPY ")]
        assert copies == ['COPY "Odd.Schema"."Big ""T"" *.x" (id, note) FROM stdin;'], copies
    finally:
        pg.psql(open(os.path.join(sql, "split_odd_names_drop.sql")).read())


def test_check_mode_writes_nothing(throwaway_pg, tmp_path, bdir):
    rc, result = run_module(tmp_path, "pg_backup", args_for(throwaway_pg, bdir), check_mode=True)
    assert rc == 0 and result["changed"] is True and result["path"].startswith(bdir)
    assert not os.path.exists(bdir)


@pytest.mark.parametrize(
    "bad, stage",
    [
        ({"user": "no_such_user"}, "open snapshot"),
        ({"database": "no_such_db"}, "open snapshot"),
        ({"tables": ["users", "no_such_table"]}, "check tables"),
        ({"tables": ["users; DROP TABLE users"]}, "options"),
        ({"format": "custom", "compression": "zstd"}, "options"),
        ({"nice": 20}, "options"),
        ({"container_compressor": "igzip", "compress_level": 6}, "options"),  # igzip has levels 1-3
        ({"container_compressor": "igzip", "compression": "zstd"}, "options"),
    ],
)
def test_bad_input_fails_naming_the_stage_and_touches_nothing(throwaway_pg, tmp_path, bdir, bad, stage):
    pg = throwaway_pg
    rc, first = run_module(tmp_path, "pg_backup", args_for(pg, bdir))
    assert rc == 0
    before = tree_hashes(bdir)
    rc, result = run_module(tmp_path, "pg_backup", args_for(pg, bdir, **bad))
    assert rc != 0 and result["failed"] and result["stage"] == stage, result
    assert tree_hashes(bdir) == before
    assert [e["file"] for e in good_backups(bdir)] == [first["file"]]
    assert pg.counts()["users"] == 10


def test_a_second_concurrent_run_is_refused_by_the_lock(throwaway_pg, tmp_path, bdir):
    os.makedirs(bdir, mode=0o700)
    fd = os.open(os.path.join(bdir, ".datasafe-backup.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # what a running backup holds
        rc, result = run_module(tmp_path, "pg_backup", args_for(throwaway_pg, bdir))
    finally:
        os.close(fd)
    assert rc != 0 and result["stage"] == "lock" and "another backup is running" in result["msg"]
    assert tree_hashes(bdir) == {}


def test_a_stale_lock_from_a_dead_process_does_not_block(throwaway_pg, tmp_path, bdir):
    os.makedirs(bdir, mode=0o700)
    with open(os.path.join(bdir, ".datasafe-backup.lock"), "w") as handle:
        handle.write("pid 999999 since 2026-01-01T02:00:00+00:00\n")
    rc, result = run_module(tmp_path, "pg_backup", args_for(throwaway_pg, bdir, kind="scheduled"))
    assert rc == 0, result
    assert [e["file"] for e in good_backups(bdir)] == [result["file"]]


def test_a_crash_between_write_and_rename_leaves_no_good_looking_file(throwaway_pg, tmp_path, bdir):
    pg = throwaway_pg
    rc, first = run_module(tmp_path, "pg_backup", args_for(pg, bdir))
    assert rc == 0
    before = tree_hashes(bdir)
    rc, _ = run_module(tmp_path, "pg_backup", args_for(pg, bdir), fault="crash-before-rename")
    assert rc == -9  # killed, as by a power cut or the OOM killer
    left = set(tree_hashes(bdir)) - set(before)
    # the dump's temporary file and the roles file's, nothing that looks like a backup
    assert len(left) == 2 and all(n.startswith(".") and n.endswith(".partial") for n in left), left
    assert [e["file"] for e in manifest.list_backups(bdir)] == [first["file"]]
    assert {k: v for k, v in tree_hashes(bdir).items() if k in before} == before
    # the next run, holding the lock, removes the dead run's temporary file
    rc, result = run_module(tmp_path, "pg_backup", args_for(pg, bdir))
    assert rc == 0 and result["removed_partials"] == sorted(left)
    assert not any(n.endswith(".partial") for n in os.listdir(bdir))


def test_a_full_disk_fails_at_write_and_leaves_nothing(throwaway_pg, tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mnt)], check=True)
    try:
        rc, result = run_module(tmp_path, "pg_backup", args_for(throwaway_pg, str(mnt)))
        assert rc != 0 and result["stage"] in ("write", "fsync"), result
        assert "full" in result["msg"] or "No space" in result["msg"]
        assert tree_hashes(str(mnt)) == {}
        assert manifest.list_backups(str(mnt)) == []
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_a_flipped_byte_in_a_stored_backup_is_caught(throwaway_pg, tmp_path, bdir):
    pg = throwaway_pg
    rc, first = run_module(tmp_path, "pg_backup", args_for(pg, bdir))
    rc2, second = run_module(tmp_path, "pg_backup", args_for(pg, bdir))
    assert rc == rc2 == 0
    flip_byte(second["path"], second["size"] // 2)
    entry = [e for e in manifest.list_backups(bdir) if e["file"] == second["file"]][0]
    assert any("sha256" in p for p in manifest.verify_file(entry))
    assert manifest.newest_verified(bdir)["file"] == first["file"]
    # and retention will not prune after it: the "new backup" is not good
    rc, result = run_module(tmp_path, "backup_retention", {"backup_dir": bdir, "new_backup": second["path"]})
    assert rc != 0 and "not a good backup" in result["msg"]


def test_a_backup_far_smaller_than_the_previous_one_is_flagged(throwaway_pg, tmp_path, bdir):
    pg = throwaway_pg
    pg.psql("CREATE DATABASE shrinking TEMPLATE %s" % pg.db)
    rc, first = run_module(tmp_path, "pg_backup", args_for(pg, bdir, database="shrinking"))
    assert rc == 0 and first["shrink"] == []
    subprocess.run(
        container.psql_argv(pg.container, "shrinking", pg.user),
        input="DELETE FROM invoices WHERE id % 2 = 0;",
        text=True,
        check=True,
        capture_output=True,
    )
    rc, flagged = run_module(tmp_path, "pg_backup", args_for(pg, bdir, database="shrinking"))
    assert rc == 0 and flagged["previous"] == first["file"]
    assert any("invoices has 3000 rows, 3000 fewer" in s for s in flagged["shrink"])
    assert flagged["manifest"]["flagged"] is True
    assert "is flagged" in str(flagged.get("warnings"))
    # compared with the newest good backup (the flagged one), an unchanged database is not flagged again ...
    rc, same = run_module(tmp_path, "pg_backup", args_for(pg, bdir, database="shrinking", fail_on_shrink=True))
    assert rc == 0 and same["shrink"] == [] and same["previous"] == flagged["file"]
    # ... a further loss is, and fail_on_shrink fails the task
    subprocess.run(
        container.psql_argv(pg.container, "shrinking", pg.user),
        input="DELETE FROM invoices WHERE id < 100;",
        text=True,
        check=True,
        capture_output=True,
    )
    rc, failing = run_module(tmp_path, "pg_backup", args_for(pg, bdir, database="shrinking", fail_on_shrink=True))
    assert rc != 0 and failing.get("stage") == "shrink", failing
    assert os.path.exists(failing["path"])  # a faithful, verified copy is never thrown away
    assert pg.counts()["invoices"] == 6000  # the real database was never touched


def aged_backups(bdir):
    """Seven fake backups 8 to 14 days old and six 1 to 6 days old; (old paths, recent paths)."""
    import datetime

    from backup_helpers import fake_backup

    os.makedirs(bdir, mode=0o700, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    old = [
        fake_backup(bdir, "lms_backup_old%02d.sql.gz" % age, now - datetime.timedelta(days=age)) for age in range(8, 15)
    ]
    recent = [
        fake_backup(bdir, "lms_backup_new%02d.sql.gz" % age, now - datetime.timedelta(days=age, hours=-1))
        for age in range(1, 7)
    ]
    return old, recent


def test_retention_prunes_by_policy_only_after_a_verified_backup(throwaway_pg, tmp_path, bdir):
    old, recent = aged_backups(bdir)
    # no fresh verified backup yet: refuses and removes nothing
    before = tree_hashes(bdir)
    rc, refused = run_module(tmp_path, "backup_retention", {"backup_dir": bdir, "require_verified_within": 3600})
    assert rc != 0 and "nothing pruned" in refused["msg"] and tree_hashes(bdir) == before
    rc, made = run_module(tmp_path, "pg_backup", args_for(throwaway_pg, bdir, kind="scheduled"))
    assert rc == 0
    policy = {"backup_dir": bdir, "new_backup": made["path"], "days": 7, "min_keep": 3}
    rc, dry = run_module(tmp_path, "backup_retention", policy, check_mode=True)
    assert rc == 0 and dry["changed"] is True
    assert sorted(r["file"] for r in dry["remove"]) == sorted(os.path.basename(p) for p in old)
    assert set(tree_hashes(bdir)) >= set(before)  # check mode removed nothing
    rc, real = run_module(tmp_path, "backup_retention", policy)
    assert rc == 0 and real["remove"] == dry["remove"]
    assert sorted(e["file"] for e in good_backups(bdir)) == sorted(
        [made["file"]] + [os.path.basename(p) for p in recent]
    )
    rc, again = run_module(tmp_path, "backup_retention", policy)
    assert rc == 0 and again["changed"] is False and again["remove"] == []


def test_the_backup_prunes_in_its_own_run_after_it_verified(throwaway_pg, tmp_path, bdir):
    old, recent = aged_backups(bdir)
    policy = {"days": 7, "min_keep": 3}
    rc, made = run_module(tmp_path, "pg_backup", args_for(throwaway_pg, bdir, kind="scheduled", retention=policy))
    assert rc == 0, made
    assert sorted(r["file"] for r in made["retention"]["remove"]) == sorted(os.path.basename(p) for p in old)
    assert made["retention"]["newest_verified"] == made["file"]
    assert sorted(e["file"] for e in good_backups(bdir)) == sorted(
        [made["file"]] + [os.path.basename(p) for p in recent]
    )
    assert made["msg"].endswith("; retention removed 7 backup(s), kept 7")
    # the same policy as a task of its own afterwards finds nothing more to prune
    rc, again = run_module(tmp_path, "backup_retention", dict(policy, backup_dir=bdir, new_backup=made["path"]))
    assert rc == 0 and again["remove"] == []


def test_a_bad_retention_policy_stops_the_backup_before_it_starts(throwaway_pg, tmp_path, bdir):
    aged_backups(bdir)
    before = tree_hashes(bdir)
    rc, refused = run_module(tmp_path, "pg_backup", args_for(throwaway_pg, bdir, retention={"min_keep": 0}))
    assert rc != 0 and refused["stage"] == "options", refused
    assert "retention: min_keep must be at least 1 (got 0)" in refused["msg"]
    assert tree_hashes(bdir) == before  # no backup made, nothing pruned


def test_a_failed_prune_fails_the_task_and_keeps_the_verified_backup(throwaway_pg, tmp_path, bdir):
    old, _ = aged_backups(bdir)
    # the oldest backup's roles file cannot be removed (a directory stands where the file is)
    entry = [e for e in manifest.list_backups(bdir) if e["path"] == old[-1]][0]
    entry["manifest"]["roles"] = {"file": "lms_backup_old14.roles.sql"}
    manifest.write(entry["manifest_path"], entry["manifest"])
    os.mkdir(os.path.join(bdir, "lms_backup_old14.roles.sql"))
    rc, failed = run_module(tmp_path, "pg_backup", args_for(throwaway_pg, bdir, retention={"days": 7, "min_keep": 3}))
    assert rc != 0 and failed["stage"] == "retention", failed
    assert "is verified and kept" in failed["msg"] and "cannot remove" in failed["msg"], failed["msg"]
    new = [e for e in manifest.list_backups(bdir) if e["file"] == failed["file"]][0]
    assert manifest.verify_file(new) == []  # the new backup is whole, verified and named
    assert manifest.newest_verified(bdir)["file"] == failed["file"]


def job_inventory(pg, root):
    """An inventory for the throwaway database, in datasafe's vocabulary."""
    inventory = os.path.join(root, "inventory.yml")
    data = {
        "all": {
            "hosts": {
                "localhost": {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                }
            },
            "children": {"production": {"hosts": {"localhost": {}}}},
            "vars": {
                "datasafe_compose_dir": REPO,
                "datasafe_compose_project": "unused",
                "datasafe_db_container": pg.container,
                "datasafe_db_name": pg.db,
                "datasafe_db_user": pg.user,
                "datasafe_critical_tables": CRITICAL_TABLES,
                "datasafe_backup_dir": os.path.join(root, "backups"),
                "datasafe_change_log": os.path.join(root, "change-log.txt"),
            },
        }
    }
    with open(inventory, "w") as handle:
        json.dump(data, handle)  # JSON is YAML
    return inventory


def test_the_backup_playbook_prunes_in_the_backup_task_when_no_offsite_copy_follows(throwaway_pg, tmp_path):
    root = str(tmp_path)
    inventory = job_inventory(throwaway_pg, root)
    old, recent = aged_backups(os.path.join(root, "backups"))
    proc = subprocess.run(
        [os.path.join(REPO, ".venv", "bin", "ansible-playbook"), "-i", inventory, "playbooks/backup.yml"]
        + ["-e", "datasafe_backup_retention_days=7", "-e", "datasafe_backup_min_keep=3"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0"),
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the backup task pruned; the retention task of its own was skipped, its report tells
    task = proc.stdout.split("TASK [datasafe_backup : Prune backups no retention rule keeps")[1]
    assert task.split("TASK [")[0].strip().splitlines()[-1].startswith("skipping: [localhost]"), task[:400]
    assert "- removed 7 backup(s), kept 7" in proc.stdout
    made = good_backups(os.path.join(root, "backups"))
    assert sorted(e["file"] for e in made if not e["file"].startswith("lms_backup_new")) == [
        e["file"] for e in made if e["kind"] == "manual"
    ]
    assert sorted(e["file"] for e in made if e["file"].startswith("lms_backup_new")) == sorted(
        os.path.basename(p) for p in recent
    )
    assert not any(os.path.exists(p) for p in old)


def test_the_cron_job_runs_the_backup_playbook_in_an_empty_environment(throwaway_pg, tmp_path):
    root = str(tmp_path)
    inventory = job_inventory(throwaway_pg, root)
    log, lock = os.path.join(root, "backup.log"), os.path.join(root, "job.lock")
    job = [os.path.join(REPO, "bin", "datasafe-backup-job"), "--inventory", inventory, "--log", log, "--lock", lock]
    proc = subprocess.run(["env", "-i"] + job, capture_output=True, text=True, check=False)
    text = open(log).read()
    assert proc.returncode == 0, text
    assert "datasafe backup job finished OK" in text
    made = good_backups(os.path.join(root, "backups"))
    assert [e["kind"] for e in made] == ["scheduled"] and made[0]["file"].startswith("lms_backup_")
    assert made[0]["manifest"]["counts"] == throwaway_pg.counts()
    prom = open(os.path.join(root, "datasafe_backup.prom")).read()
    assert 'datasafe_backup_last_run_success{database="lms_slncity",kind="scheduled"} 1' in prom
    # a second job while one holds the lock: refused, logged, exit 75, nothing written
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        before = tree_hashes(os.path.join(root, "backups"))
        second = subprocess.run(["env", "-i"] + job, capture_output=True, text=True, check=False)
    finally:
        os.close(fd)
    assert second.returncode == 75
    assert "another backup job holds" in open(log).read()
    assert tree_hashes(os.path.join(root, "backups")) == before
    # a failing backup (wrong database) exits non-zero for cron, naming the stage in the log
    bad = subprocess.run(
        ["env", "-i"] + job + ["--", "-e", "datasafe_db_name=no_such_db"], capture_output=True, text=True, check=False
    )
    assert bad.returncode != 0
    text = open(log).read()
    assert "failed at stage open snapshot" in text and "FAILED (exit" in text
    assert tree_hashes(os.path.join(root, "backups")) == before
