"""Restore benchmark: datasafe's restore.yml against the protocol's manual EMERGENCY RECOVERY.

1. One verified backup of the benchmark database (dsbench, ~1 GB, only read) with playbooks/backup.yml.
2. A stack of the bench's own (project dsrestore, ports 56920/56921) is seeded from that backup.
   Then, on a quiet machine (the test bed's other stacks stopped, see quiet.py), rounds in
   alternating order (datasafe first, then manual first, ...), each side prepared untimed:
   every database of the bench's cluster vacuumed and analyzed, then a CHECKPOINT, so no side
   inherits the autovacuum work or the dirty buffers that earlier rounds left (datasafe's
   disaster comes after the vacuum, so its deleted rows are left as they are):
3. datasafe: the disaster first (every test result deleted behind datasafe's back), then timed:
   ``ansible-playbook playbooks/restore.yml -e datasafe_restore_confirm=lms_slncity
   -e datasafe_restore_backup=<that backup>``, to a healthy, verified stack: the moment its change
   log entry records as ``verified_at`` (safety backup, restore beside, counts vs manifest, swap,
   start, health 200, every service running and healthy, data on the named volume). The command
   returns 1.2-1.5 s later (the statistics wait, the change log, the lock's release); that time is
   printed too, with its own ratio, one line above the last.
4. manual: it restores INTO the live database; on a database holding rows that only produces
   errors and duplicates, so (untimed) the database is renamed away and an empty one created:
   the state the protocol assumes; then the application is started again, so the manual side
   starts from a serving stack as datasafe's does. Timed: down; up -d postgres; sleep 10;
   gunzip -c | psql; count users; up -d; then until the health endpoint answers 200.
5. Every side must end with every count equal to the backup's manifest. Last line: the ratio
   of the medians to a healthy, verified stack, ``restore ratio R (datasafe A s / manual B s)``.
6. The bench's own stack and volume are removed (by its project name only); dsbench is untouched.

DATASAFE_BENCH_RESTORE_ROUNDS (default 3) sets the rounds; DATASAFE_BENCH_RESTORE_QUIET=0 leaves
the other stacks running; DATASAFE_BENCH_RESTORE_LOG=<prefix> keeps each datasafe run's output.
"""

import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "module_utils"))
import datasafe_path  # noqa: E402,F401
from ansible.module_utils.datasafe import container, manifest, ready, restore  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchbed  # noqa: E402
import phases  # noqa: E402
import spread  # noqa: E402
from quiet import QuietMachine  # noqa: E402

BIN = os.path.join(REPO, ".venv", "bin")
COMPOSE_FILE = os.path.join(REPO, "examples", "lms", "docker-compose.prod.yml")
PROJECT, DB_CONTAINER, DB_PORT, BACKEND_PORT = "dsrestore", "dsrestore-pg", 56920, 56921
ENV = {
    "COMPOSE_PROJECT_NAME": PROJECT,
    "LMS_DB_CONTAINER": DB_CONTAINER,
    "LMS_BACKEND_CONTAINER": "dsrestore-backend",
    "LMS_DB_PORT": str(DB_PORT),
    "LMS_BACKEND_PORT": str(BACKEND_PORT),
    "LMS_BACKEND_IMAGE": "lms-backend:dsbench",
}
HEALTH = "http://127.0.0.1:%d/health" % BACKEND_PORT
TABLES = benchbed.TABLES
run = container.subprocess_runner


def say(text):
    print("bench-restore: %s" % text, file=sys.stderr, flush=True)


def sh(argv, env_extra=None, **kw):
    env = dict(
        os.environ,
        **ENV,
        **(env_extra or {}),
        PATH="%s:%s" % (BIN, os.environ["PATH"]),
        ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
    )
    return subprocess.run(argv, check=True, env=env, cwd=REPO, **kw)


def compose(*args):
    """docker compose on the bench's own project; its progress lines only when it fails."""
    try:
        sh(["docker", "compose", "-p", PROJECT, "-f", COMPOSE_FILE, *args], capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        raise SystemExit("bench-restore: docker compose %s failed: %s" % (" ".join(args), exc.stderr[-2000:])) from exc


def playbook(name, varsfile, *extra, log=None):
    """Run a playbook; with ``log``, its output (profile_tasks timings included) goes to that file."""
    argv = [os.path.join(BIN, "ansible-playbook"), os.path.join(REPO, "playbooks", name), "-e", "@" + varsfile, *extra]
    if log is None:
        sh(argv, stdout=subprocess.DEVNULL)
        return
    with open(log, "w") as out:
        sh(argv, stdout=out, env_extra={"PROFILE_TASKS_TASK_OUTPUT_LIMIT": "all"})


def report_phases(log):
    """Every task of a playbook run that took 0.5 s or more, in order, from profile_tasks' recap."""
    with open(log) as handle:
        for seconds, task in phases.task_times(handle.read(), minimum=0.5):
            say("  %6.1f s  %s" % (seconds, task))


def health_status():
    """The health endpoint's HTTP status, None while nothing answers."""
    try:
        with urllib.request.urlopen(HEALTH, timeout=2) as resp:  # noqa: S310  (loopback URL built here)
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def healthy():
    return health_status() == 200


def answering():
    """The backend answers HTTP at all (503 included: the prepared empty database has no tables)."""
    return health_status() is not None


def wait_for(check, what, timeout=300):
    benchbed.wait_for(check, what, timeout, "bench-restore")


def remove_own_stack():
    if PROJECT != "dsrestore":  # only ever the bench's own project
        raise SystemExit("refusing to remove project %s" % PROJECT)
    subprocess.run(
        ["docker", "compose", "-p", PROJECT, "-f", COMPOSE_FILE, "down"],
        env=dict(os.environ, **ENV),
        capture_output=True,
        check=False,
    )
    subprocess.run(["docker", "volume", "rm", "%s_postgres_data" % PROJECT], capture_output=True, check=False)


def main():
    rounds = int(os.environ.get("DATASAFE_BENCH_RESTORE_ROUNDS", "3"))
    if rounds < 1:
        raise SystemExit("bench-restore: DATASAFE_BENCH_RESTORE_ROUNDS must be 1 or more")
    work = tempfile.mkdtemp(prefix="datasafe-bench-restore-", dir="/var/tmp")
    bench_vars = benchbed.write_dsbench_vars(work + "/dsbench.json", work)
    own_vars = benchbed.write_vars(
        work + "/dsrestore.json", work, PROJECT, DB_CONTAINER, ENV, datasafe_health_url=HEALTH
    )
    try:
        say("backing up the benchmark database (dsbench, only read)")
        playbook("backup.yml", bench_vars)
        entry = manifest.list_backups(work + "/backups")[0]
        row = restore.describe_backup(entry, "lms_slncity", entry["end"], manifest.verify_file)
        say("backup %s, %s" % (row["file"], row["size_human"]))
        with QuietMachine(os.environ.get("DATASAFE_BENCH_RESTORE_QUIET", "1") != "0", say=say):
            seed(row)
            ours, returned, manual, loads = [], [], [], []
            for number in range(rounds):
                order = ("datasafe", "manual") if number % 2 == 0 else ("manual", "datasafe")
                for side in order:
                    if side == "datasafe":
                        verified, command = datasafe_round(number + 1, own_vars, row, work)
                        ours.append(verified)
                        returned.append(command)
                    else:
                        manual.append(manual_round(number + 1, row))
                loads.append(spread.loadavg())
    finally:
        remove_own_stack()
        shutil.rmtree(work, ignore_errors=True)
    say(
        "datasafe %s s to a verified stack (its command returned after %s s); manual %s s"
        % (
            ", ".join("%.1f" % t for t in ours),
            ", ".join("%.1f" % t for t in returned),
            ", ".join("%.1f" % t for t in manual),
        )
    )
    ours_median, returned_median, manual_median = (
        statistics.median(ours),
        statistics.median(returned),
        statistics.median(manual),
    )
    say(
        "to the command's return: ratio %.2f (datasafe %.1f s / manual %.1f s)"
        % (returned_median / manual_median, returned_median, manual_median)
    )
    for line in spread.lines(ours, manual, loads):
        print(line, flush=True)
    print(
        "restore ratio %.2f (datasafe %.1f s / manual %.1f s)"
        % (ours_median / manual_median, ours_median, manual_median)
    )


def checkpoint():
    """Untimed: write out the preparation's dirty buffers, so the timed side does not."""
    container.query(run, DB_CONTAINER, "postgres", "lms_user", "CHECKPOINT;\n")


def settle():
    """Untimed: vacuum and analyze every database of the bench's cluster.

    Each round leaves freshly loaded and damaged databases behind (the live one, the kept
    ``*_before_restore_*`` and ``*_manual_prep_*``); autovacuum would otherwise process about a
    gigabyte of them at a random point of the next timed side, whichever side that is.
    """
    sh(["docker", "exec", DB_CONTAINER, "vacuumdb", "-U", "lms_user", "--all", "--analyze", "--parallel=0", "--quiet"])


def seed(row):
    say("starting the bench's own stack and seeding it from the backup")
    remove_own_stack()
    compose("up", "-d", "postgres")
    wait_for(lambda: ready.pg_ready(run, DB_CONTAINER, "lms_user", "postgres")[0], "PostgreSQL")
    compose("up", "-d")
    wait_for(healthy, "the backend")
    restore.restore_beside(run, DB_CONTAINER, "lms_user", "lms_slncity", "lms_slncity_seed", row, TABLES)
    compose("stop", "backend")
    restore.swap(run, DB_CONTAINER, "lms_user", "lms_slncity", "lms_slncity_seed", "lms_slncity_schema_only")
    compose("start", "backend")
    wait_for(healthy, "the backend")


def assert_restored(side, number, row):
    counts = container.count_rows(run, DB_CONTAINER, "lms_slncity", "lms_user", TABLES)
    if counts != row["counts"]:
        raise SystemExit(
            "bench-restore: round %d %s left %s, the backup holds %s" % (number, side, counts, row["counts"])
        )


def datasafe_round(number, own_vars, row, work):
    settle()
    # The disaster, on a serving stack: every test result deleted behind datasafe's back.
    container.query(run, DB_CONTAINER, "lms_slncity", "lms_user", "DELETE FROM test_results;\n")
    checkpoint()
    t0, started = time.monotonic(), time.time()
    prefix = os.environ.get("DATASAFE_BENCH_RESTORE_LOG") or work + "/restore-playbook"
    log = "%s.%d.log" % (prefix, number)
    # The backup named: the safety backups of earlier rounds (the damaged state) are newer.
    playbook(
        "restore.yml",
        own_vars,
        *benchbed.restore_args(row["path"]),
        log=log,
    )
    elapsed = time.monotonic() - t0
    assert_restored("datasafe", number, row)
    verified = verified_after(work + "/change-log.jsonl", started, elapsed)
    say(
        "round %d datasafe %5.1f s to a verified stack, %5.1f s to its return; its tasks of 0.5 s or more:"
        % (number, verified, elapsed)
    )
    report_phases(log)
    return verified, elapsed


def verified_after(json_log, started, elapsed):
    """Seconds from ``started`` (time.time() at the command) to the newest completed restore's
    ``verified_at`` in the change log; refuses an entry that is missing or outside the run."""
    with open(json_log) as handle:
        entries = [json.loads(line) for line in handle if line.strip()]
    done = [e for e in entries if e.get("action") == "restore" and e.get("outcome") == "completed"]
    if not done or "verified_at" not in done[-1]:
        raise SystemExit("bench-restore: the change log %s has no completed restore with verified_at" % json_log)
    seconds = datetime.datetime.fromisoformat(done[-1]["verified_at"]).timestamp() - started
    if not 0 < seconds <= elapsed:
        raise SystemExit(
            "bench-restore: verified_at %s lies outside this run (%.1f s after its start, which took %.1f s)"
            % (done[-1]["verified_at"], seconds, elapsed)
        )
    return seconds


def manual_round(number, row):
    # Untimed: the state the manual sequence assumes - an empty database to pipe the dump into.
    compose("stop", "backend")
    container.query(
        run,
        DB_CONTAINER,
        "postgres",
        "lms_user",
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = 'lms_slncity';\n"
        'ALTER DATABASE "lms_slncity" RENAME TO "lms_slncity_manual_prep_%d";\n' % number,
    )
    container.query(run, DB_CONTAINER, "postgres", "lms_user", 'CREATE DATABASE "lms_slncity" OWNER "lms_user";\n')
    # The stack serves again, as datasafe's side starts: the protocol's step 2 (down) stops a
    # running application, and that stop belongs to the timed sequence.
    compose("start", "backend")
    wait_for(answering, "the backend")
    settle()
    checkpoint()
    t0 = time.monotonic()
    laps = []

    def lap(what):
        laps.append((what, time.monotonic() - t0 - sum(p[1] for p in laps)))

    compose("down")
    compose("up", "-d", "postgres")
    lap("down; up -d postgres")
    time.sleep(10)  # the protocol's fixed sleep, measured as written
    lap("sleep 10")
    sh(
        [
            "bash",
            "-o",
            "pipefail",
            "-c",
            'gunzip -c "$1" | docker exec -i %s psql -U lms_user -d lms_slncity' % DB_CONTAINER,
            "manual",
            row["path"],
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    lap("gunzip -c | psql")
    sh(
        [
            "docker",
            "exec",
            DB_CONTAINER,
            "psql",
            "-U",
            "lms_user",
            "-d",
            "lms_slncity",
            "-c",
            "SELECT COUNT(*) FROM users;",
        ],
        stdout=subprocess.DEVNULL,
    )
    lap("count users")
    compose("up", "-d")
    while not healthy():
        time.sleep(0.2)
    elapsed = time.monotonic() - t0
    lap("up -d; until healthy")
    assert_restored("manual", number, row)
    say("round %d manual   %5.1f s: %s" % (number, elapsed, ";  ".join("%.1f s %s" % (s, w) for w, s in laps)))
    return elapsed


if __name__ == "__main__":
    main()
