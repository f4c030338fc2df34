"""Recovery-time benchmark (make bench-recover; docs/continuous.md): on the ~1 GB benchmark database,
the time from the command to a verified, serving database, continuous recovery's
``playbooks/recover.yml`` (to latest, from the pgBackRest repository) against the restore playbook
``playbooks/restore.yml`` from the last logical backup.

1. One verified logical backup of the benchmark database (dsbench, ~1 GB, only read) with
   playbooks/backup.yml: the "last logical backup".
2. A stack of the bench's own (project dsrecover, ports 56930/56931, the test bed's image with
   pgBackRest) is seeded from that backup, and continuous recovery is enabled on it with
   playbooks/continuous.yml (through the safe update; stanza, first full backup, verify).
3. A marker row is committed and archived after the full backup, so recovery has WAL to replay.
4. Timed, recover.yml to latest: restore the repository into a new volume and a throwaway server,
   replay, promote, the gap check, counts of the critical tables; the command's return is a
   serving, checked database (127.0.0.1:56932). It must hold every count of the backup and the marker.
5. Timed, restore.yml from the logical backup into the bench's own stack (safety backup, restore
   beside, counts against the manifest, swap, health): the command's return is a serving,
   verified stack. Every count must equal the backup's manifest.
6. Everything of the bench's own is removed (its stack, volume, throwaway server, repository);
   dsbench is only read. The derived image datasafe-continuous/dsrecover-db:* is kept as a cache.

One round each (each side takes minutes on the 1 GB database). Last line:
``recover ratio R (recover.yml A s / restore.yml B s)``; below 1 means recovery is faster.
DATASAFE_BENCH_RECOVER_QUIET=1 stops the test bed's other stacks for the timed part (quiet.py);
off by default because dsbench is shared.
"""

import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "module_utils"))
import datasafe_path  # noqa: E402,F401
from ansible.module_utils.datasafe import container, manifest, ready, restore  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchbed  # noqa: E402
from quiet import QuietMachine  # noqa: E402

BIN = os.path.join(REPO, ".venv", "bin")
COMPOSE_FILE = os.path.join(REPO, "examples", "lms", "docker-compose.prod.yml")
PROJECT, DB_CONTAINER, DB_PORT, BACKEND_PORT, RECOVER_PORT = "dsrecover", "dsrecover-pg", 56930, 56931, 56932
RECOVERED = "dsrecover-recovered"
IMAGE = "datasafe/postgres:15-bookworm-pgbackrest"
ENV = {
    "COMPOSE_PROJECT_NAME": PROJECT,
    "LMS_DB_CONTAINER": DB_CONTAINER,
    "LMS_BACKEND_CONTAINER": "dsrecover-backend",
    "LMS_DB_PORT": str(DB_PORT),
    "LMS_BACKEND_PORT": str(BACKEND_PORT),
    "LMS_BACKEND_IMAGE": "lms-backend:dsbench",
    "DATASAFE_PG_IMAGE": IMAGE,
}
TABLES = benchbed.TABLES
run = container.subprocess_runner


def say(text):
    print("bench-recover: %s" % text, file=sys.stderr, flush=True)


def sh(argv, env_extra=None, **kw):
    env = dict(os.environ, **ENV, **(env_extra or {}), PATH="%s:%s" % (BIN, os.environ["PATH"]))
    env["ANSIBLE_CONFIG"] = os.path.join(REPO, "ansible.cfg")
    return subprocess.run(argv, check=False, env=env, cwd=REPO, **kw)


def compose(*args):
    proc = sh(["docker", "compose", "-p", PROJECT, "-f", COMPOSE_FILE, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit("bench-recover: docker compose %s failed: %s" % (" ".join(args), proc.stderr[-2000:]))


def playbook(name, varsfile, *extra, env_extra=None, log):
    """Run a playbook, its output into ``log``; SystemExit naming the log when it fails."""
    argv = [os.path.join(BIN, "ansible-playbook"), os.path.join(REPO, "playbooks", name), "-e", "@" + varsfile, *extra]
    with open(log, "w") as out:
        proc = sh(argv, env_extra=env_extra, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        with open(log) as handle:
            tail = handle.read()[-3000:]
        raise SystemExit("bench-recover: %s failed (log %s):\n%s" % (name, log, tail))


def wait_for(check, what, timeout=600):
    benchbed.wait_for(check, what, timeout, "bench-recover")


def remove_own(work):
    """Only the bench's own: its throwaway server, its stack and volume, its repository."""
    if PROJECT != "dsrecover":
        raise SystemExit("refusing to remove project %s" % PROJECT)
    benchbed.remove_server(RECOVERED)
    sh(["docker", "compose", "-p", PROJECT, "-f", COMPOSE_FILE, "down"], capture_output=True)
    subprocess.run(["docker", "volume", "rm", "%s_postgres_data" % PROJECT], capture_output=True, check=False)
    if work and os.path.isdir(work):
        benchbed.remove_as_root(IMAGE, work, "backups-pgbackrest")


def main():
    global COMPOSE_FILE
    work = tempfile.mkdtemp(prefix="datasafe-bench-recover-", dir="/var/tmp")
    # continuous.yml rolls out through the safe update, whose preflight checks the checkout's git
    # state: the bench's stack gets a checkout of its own with a local origin, as the demo does.
    deploy = os.path.join(work, "deploy")
    make_app = [os.path.join(REPO, "testbed", "make-app-repo.sh"), os.path.join(REPO, "examples", "lms"), deploy]
    subprocess.run(["bash", *make_app], check=True, capture_output=True)
    compose_dir = os.path.join(deploy, "app")
    COMPOSE_FILE = os.path.join(compose_dir, "docker-compose.prod.yml")
    override_dir = os.path.join(work, "compose")
    bench_vars = benchbed.write_dsbench_vars(
        work + "/dsbench.json", work, datasafe_health_url="http://127.0.0.1:56901/health"
    )
    own_vars = benchbed.write_vars(
        work + "/dsrecover.json",
        work,
        PROJECT,
        DB_CONTAINER,
        ENV,
        compose_dir=compose_dir,
        datasafe_health_url="http://127.0.0.1:%d/health" % BACKEND_PORT,
        datasafe_continuous_conf_dir=work + "/conf",
        datasafe_recover_name=RECOVERED,
        datasafe_recover_port=RECOVER_PORT,
    )
    own_env = {"DATASAFE_OVERRIDE_DIR": override_dir}
    try:
        remove_own(None)
        say("backing up the benchmark database (dsbench, only read): the last logical backup")
        playbook("backup.yml", bench_vars, log=work + "/backup.log")
        entry = manifest.list_backups(work + "/backups")[0]
        row = restore.describe_backup(entry, "lms_slncity", entry["end"], manifest.verify_file)
        say("backup %s, %s; counts %s" % (row["file"], row["size_human"], row["counts"]))

        say("starting the bench's own stack and seeding it from that backup")
        compose("up", "-d", "postgres")
        wait_for(lambda: ready.pg_ready(run, DB_CONTAINER, "lms_user", "postgres")[0], "PostgreSQL")
        compose("up", "-d")
        restore.restore_beside(run, DB_CONTAINER, "lms_user", "lms_slncity", "lms_slncity_seed", row, TABLES)
        compose("stop", "backend")
        restore.swap(run, DB_CONTAINER, "lms_user", "lms_slncity", "lms_slncity_seed", "lms_slncity_schema_only")
        compose("start", "backend")

        say("enabling continuous recovery on it (playbooks/continuous.yml: safe update, stanza, full backup, verify)")
        playbook("continuous.yml", own_vars, env_extra=own_env, log=work + "/continuous.log")
        marker = container.query(
            run,
            DB_CONTAINER,
            "lms_slncity",
            "lms_user",
            "CREATE TABLE IF NOT EXISTS bench_marker (at timestamptz PRIMARY KEY DEFAULT clock_timestamp());"
            "INSERT INTO bench_marker DEFAULT VALUES RETURNING at::text;",
        )[-1][0]
        segment = container.query(
            run, DB_CONTAINER, "lms_slncity", "lms_user", "SELECT pg_walfile_name(pg_current_wal_lsn());"
        )[0][0]
        container.query(run, DB_CONTAINER, "lms_slncity", "lms_user", "SELECT pg_switch_wal();")
        wait_for(
            lambda: (
                container.query(
                    run,
                    DB_CONTAINER,
                    "lms_slncity",
                    "lms_user",
                    "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver;",
                )[0][0]
                >= segment
            ),
            "archiving of the marker",
            timeout=300,
        )
        container.query(run, DB_CONTAINER, "postgres", "lms_user", "CHECKPOINT;")

        with QuietMachine(os.environ.get("DATASAFE_BENCH_RECOVER_QUIET", "0") == "1", say=say):
            say("timed: recover.yml to latest into a throwaway server")
            t0 = time.monotonic()
            playbook("recover.yml", own_vars, env_extra=own_env, log=work + "/recover.log")
            recovered = time.monotonic() - t0
            counts = container.count_rows(run, RECOVERED, "lms_slncity", "lms_user", TABLES)
            got = container.query(run, RECOVERED, "lms_slncity", "lms_user", "SELECT max(at)::text FROM bench_marker;")
            if counts != row["counts"] or got[0][0] != marker:
                raise SystemExit("bench-recover: the recovered server holds %s and marker %s" % (counts, got[0][0]))
            say("recover.yml: %.1f s to a promoted, checked server with every count and the marker" % recovered)
            benchbed.remove_server(RECOVERED)
            container.query(run, DB_CONTAINER, "postgres", "lms_user", "CHECKPOINT;")

            say("timed: restore.yml from the logical backup into the bench's own stack")
            t0 = time.monotonic()
            playbook(
                "restore.yml",
                own_vars,
                *benchbed.restore_args(row["path"]),
                env_extra=own_env,
                log=work + "/restore.log",
            )
            restored = time.monotonic() - t0
            counts = container.count_rows(run, DB_CONTAINER, "lms_slncity", "lms_user", TABLES)
            if counts != row["counts"]:
                raise SystemExit("bench-recover: restore.yml left %s, the backup holds %s" % (counts, row["counts"]))
            say("restore.yml: %.1f s to a verified, serving stack" % restored)
    finally:
        remove_own(work)
    print("recover ratio %.2f (recover.yml %.1f s / restore.yml %.1f s)" % (recovered / restored, recovered, restored))


if __name__ == "__main__":
    main()
