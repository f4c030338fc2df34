"""RPO benchmark for continuous recovery (make bench-rpo; see docs/continuous.md).

A throwaway PostgreSQL of the test bed's image with pgBackRest, archiving exactly as datasafe's
override configures it (module_utils/datasafe/continuous.py: the same settings, configuration
and archive_timeout=60 s), a first full backup; a writer commits one row every 100 ms and notes
the host time each commit was acknowledged; at a random moment the server and its volume are
destroyed (docker rm --force, docker volume rm); the repository is recovered to latest into a new
volume and a throwaway server with the same engine call playbooks/recover.yml makes. The RPO is
the time between the last acknowledged commit and the newest commit the recovered server has.

Last line: ``rpo seconds S (protocol: up to 86400)``: the protocol's only recovery point is the
02:00 backup, so it loses up to a day.
"""

import os
import random
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, os.path.join(REPO, "module_utils"))

import datasafe_path  # noqa: E402,F401
import pgbed  # noqa: E402  (free_port, throwaway labels)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchbed  # noqa: E402
from ansible.module_utils.datasafe import container, continuous, runner  # noqa: E402

IMAGE = os.environ.get("DATASAFE_PGBACKREST_IMAGE", "datasafe/postgres:15-bookworm-pgbackrest")
USER, DB, STANZA = "lms_user", "lms_slncity", "bench_rpo"
run = runner.run


def say(text):
    print("bench-rpo: %s" % text, flush=True)


def main():
    live, recovered = "datasafe-bench-rpo-live-%d" % os.getpid(), "datasafe-bench-rpo-rec-%d" % os.getpid()
    root = tempfile.mkdtemp(prefix="datasafe-bench-rpo.", dir="/var/tmp")
    labels = pgbed.throwaway_labels()
    try:
        port, repo, conf = benchbed.archiving_server(live, root, IMAGE, USER, DB, STANZA, labels, timeout=180)
        container.query(run, live, DB, USER, "CREATE TABLE rpo_probe (id bigint PRIMARY KEY, acked double precision);")
        continuous.pgbackrest(run, live, STANZA, ["stanza-create"], "stanza-create")
        continuous.pgbackrest(run, live, STANZA, ["backup", "--type=full"], "backup")
        say("archiving on (archive_timeout %ss), first full backup taken; writer starts" % continuous.ARCHIVE_TIMEOUT)

        acked, stop = {}, threading.Event()
        session = subprocess.Popen(
            ["docker", "exec", "-i", live, "psql", "-X", "-At", "-q", "-U", USER, "-d", DB],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )

        def writer():
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    session.stdin.write("INSERT INTO rpo_probe VALUES (%d, 0) RETURNING id;\n" % n)
                    session.stdin.flush()
                    line = session.stdout.readline()
                except (BrokenPipeError, OSError):
                    return
                if not line:
                    return
                acked[int(line)] = time.time()
                time.sleep(0.1)

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        moment = random.uniform(15, 15 + 2 * continuous.ARCHIVE_TIMEOUT)  # noqa: S311  (a random moment, not a secret)
        time.sleep(moment)
        # the disaster: the server and its volume, gone
        subprocess.run(["docker", "rm", "--force", live], check=True, capture_output=True)
        subprocess.run(["docker", "volume", "rm", live], check=True, capture_output=True)
        stop.set()
        thread.join(timeout=30)
        last_id = max(acked)  # no commit can be acknowledged after the server is gone
        last_ack = acked[last_id]
        say("destroyed server and volume %.1f s into the writes, after %d acknowledged commits" % (moment, len(acked)))

        started = time.monotonic()
        continuous.recover(
            run, IMAGE, STANZA, repo, conf, recovered, pgbed.free_port(), USER, DB, ["rpo_probe"], labels=labels[1::2]
        )
        took = time.monotonic() - started
        newest = int(container.query(run, recovered, DB, USER, "SELECT coalesce(max(id), 0) FROM rpo_probe;")[0][0])
        have = int(container.query(run, recovered, DB, USER, "SELECT count(*) FROM rpo_probe;")[0][0])
        if have != newest:
            raise SystemExit("bench-rpo: the recovered table has a hole: %d rows, max id %d" % (have, newest))
        rpo = last_ack - acked[newest] if newest else last_ack - min(acked.values())
        say(
            "recovered to latest in %.1f s: %d of %d acknowledged commits (last lost: %d)"
            % (took, newest, last_id, last_id - newest)
        )
        print("rpo seconds %.1f (protocol: up to 86400)" % max(rpo, 0.0))
    finally:
        benchbed.remove_server(live, recovered)
        benchbed.remove_as_root(IMAGE, root, "repo")


if __name__ == "__main__":
    main()
