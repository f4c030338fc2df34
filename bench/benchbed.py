"""What the benchmarks share (bench/*_bench.py): their throwaway servers and their variables.

- :func:`archiving_server`: a throwaway PostgreSQL of the image with pgBackRest, archiving exactly
  as datasafe's override configures it (module_utils/datasafe/continuous.py), started and
  answering (rpo_bench.py, undo_bench.py).
- :func:`remove_server` and :func:`remove_as_root`: only what a bench made, by exact name (the
  repository's files belong to the image's postgres user, so they are removed from inside a container).
- :func:`write_vars`: the variables for a playbook run against the benchmark database (dsbench,
  only read) or the bench's own stack (restore_bench.py, recover_bench.py).
"""

import json
import os
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, os.path.join(REPO, "module_utils"))

import datasafe_path  # noqa: E402,F401
import pgbed  # noqa: E402  (free_port, throwaway labels)
from ansible.module_utils.datasafe import container, continuous, runner  # noqa: E402

TABLES = ["users", "patients", "visits", "test_results", "invoices"]


def archiving_server(name, root, image, user, db, stanza, labels, timeout=300, shm=False):
    """Start the throwaway server ``name`` (a volume and a container of that name, ``labels``) on a
    free loopback port, its pgBackRest repository ``root``/repo and configuration ``root``/conf;
    return (port, repo, conf) once it answers. SystemExit when it does not within ``timeout`` s."""
    repo, conf = os.path.join(root, "repo"), os.path.join(root, "conf")
    os.makedirs(conf)
    os.makedirs(repo, mode=0o700)
    os.chown(repo, *continuous.image_postgres_ids(runner.run, image))
    port = pgbed.free_port()
    with open(os.path.join(conf, continuous.CONF_NAME), "w") as handle:
        handle.write(continuous.render_conf(stanza, port, user, 1))
    command = continuous.with_settings(
        ["postgres", "-c", "listen_addresses=127.0.0.1"], continuous.server_settings(stanza)
    )
    shm_size = ["--shm-size", container.THROWAWAY_SHM_SIZE] if shm else []
    subprocess.run(["docker", "volume", "create", *labels, name], check=True, capture_output=True)
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "--network", "host", *shm_size, *labels]
        + ["-e", "PGPORT=%d" % port, "-e", "POSTGRES_USER=" + user, "-e", "POSTGRES_DB=" + db]
        + ["-e", "POSTGRES_PASSWORD=bench-only"]
        + ["--mount", "type=volume,source=%s,target=/var/lib/postgresql/data" % name]
        + ["--mount", "type=bind,source=%s,target=%s" % (repo, continuous.REPO_MOUNT)]
        + ["--mount", "type=bind,source=%s,target=%s,readonly" % (conf, continuous.CONF_MOUNT)]
        + [image]
        + command,
        check=True,
        capture_output=True,
    )
    ready = ["docker", "exec", name, "pg_isready", "-q", "-h", "127.0.0.1", "-U", user, "-d", db]
    wait_for(lambda: runner.run(ready)[0] == 0, "the server " + name, timeout)
    return port, repo, conf


def wait_for(check, what, timeout=300, bench="bench"):
    """Until ``check()`` is true; SystemExit (``<bench>: <what> did not come up ...``) after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("%s: %s did not come up within %ss" % (bench, what, timeout))
        time.sleep(0.5)


def restore_args(backup):
    """restore.yml's extra variables for the bench's own stack: confirmed, from ``backup``."""
    return ["-e", "datasafe_restore_confirm=lms_slncity", "-e", "datasafe_restore_backup=%s" % backup]


def remove_server(*names):
    """The throwaway servers ``names``: each container and its volume of the same name."""
    for name in names:
        subprocess.run(["docker", "rm", "--force", name], capture_output=True, check=False)
        subprocess.run(["docker", "volume", "rm", name], capture_output=True, check=False)


def remove_as_root(image, root, sub, remove_root=True):
    """``root``/``sub`` removed from inside ``image`` (its files belong to the image's postgres
    user); then ``root`` itself with ``remove_root``."""
    subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--user", "0", "--entrypoint", "rm"]
        + ["--mount", "type=bind,source=%s,target=/mnt/root" % root, image, "-rf", "/mnt/root/" + sub],
        capture_output=True,
        check=False,
    )
    if remove_root:
        shutil.rmtree(root, ignore_errors=True)


def write_vars(path, work, project, db_container, compose_env, compose_dir=None, **extra):
    """Write ``path``: the variables of a playbook run against the stack ``project`` (the bench
    names everything it touches: the default inventory describes no stack), its backups, change
    log and lock under ``work``; ``extra`` variables on top. ``compose_dir``: the stack's
    checkout (default: examples/lms, for stacks no safe update runs on; a safe update checks its
    checkout's git state, so those get one of their own: testbed/make-app-repo.sh)."""
    with open(path, "w") as out:
        json.dump(
            dict(
                datasafe_compose_dir=compose_dir or os.path.join(REPO, "examples", "lms"),
                datasafe_compose_files=["docker-compose.prod.yml"],
                datasafe_db_service="postgres",
                datasafe_db_name="lms_slncity",
                datasafe_db_user="lms_user",
                datasafe_critical_tables=TABLES,
                datasafe_backup_dir=work + "/backups",
                datasafe_change_log=work + "/change-log.txt",
                datasafe_backup_prune=False,
                datasafe_backup_metrics_file="",
                datasafe_restore_lock_path=work + "/restore.lock",
                datasafe_compose_project=project,
                datasafe_db_container=db_container,
                datasafe_compose_env=compose_env,
                **extra,
            ),
            out,
        )
    return path


def write_dsbench_vars(path, work, **extra):
    """:func:`write_vars` for the benchmark database dsbench (bench/benchdb.sh), which benches only read."""
    return write_vars(
        path,
        work,
        "dsbench",
        "dsbench-pg",
        {"COMPOSE_PROJECT_NAME": "dsbench", "LMS_DB_CONTAINER": "dsbench-pg"},
        **extra,
    )
