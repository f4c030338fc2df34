"""The volume pin against the real Docker engine: every client that deletes volumes, run for real.

One throwaway stack (the demo's database service, its own compose project, port and volume,
seeded with the LMS data) on a private Docker engine (tests/pin/private_engine.py: prunes
there reach only this test's resources). The pin is put in place by playbooks/pin.yml itself
(check mode first). Then every attack of tests/pin/volume_attacks.yml runs for real; after each,
the volume (same creation time and mount point) and every row are still there, and
``docker compose up -d`` brings the database back with all its data. A control proves the
attacks do delete an unpinned volume on this engine, so the tests can fail.
"""

import http.client
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import uuid

import pytest
import yaml
from ansible.module_utils.datasafe import container, pin
from harness import run_module
from pgbed import CRITICAL_TABLES, LMS, PG_IMAGE, REPO, free_port
from private_engine import PrivateEngine

HERE = os.path.dirname(os.path.abspath(__file__))
ATTACKS = yaml.safe_load(open(os.path.join(HERE, "volume_attacks.yml"), encoding="utf-8"))  # noqa: SIM115
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
RECAP = re.compile(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")

pytestmark = pytest.mark.slow


def _compose_file(workdir, project, port):
    """The demo's compose file with only its database service (the backend needs a build)."""
    with open(os.path.join(LMS, "docker-compose.prod.yml"), encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    del spec["services"]["backend"]
    db = spec["services"]["postgres"]
    db["volumes"] = [v.replace("./db/init", os.path.join(LMS, "db", "init")) for v in db["volumes"]]
    db["labels"] = {"io.datasafe.test": "1"}
    path = os.path.join(workdir, "docker-compose.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(spec, handle, sort_keys=False)
    return path


@pytest.fixture(scope="module")
def engine():
    eng = PrivateEngine(images=[PG_IMAGE])
    old = os.environ.get("DOCKER_HOST")
    try:
        eng.start()
        os.environ["DOCKER_HOST"] = eng.host  # the modules run in-process and call docker
        yield eng
    finally:
        if old is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = old
        eng.stop()


@pytest.fixture(scope="module")
def stack(engine, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("pin-stack"))
    project = "dstest-pin-%s" % uuid.uuid4().hex[:8]
    env = dict(
        engine.env,
        COMPOSE_PROJECT_NAME=project,
        LMS_DB_CONTAINER="%s-pg" % project,
        LMS_DB_PORT=str(free_port()),
        DATASAFE_PG_IMAGE=PG_IMAGE,
    )
    s = dict(
        engine=engine,
        env=env,
        workdir=workdir,
        project=project,
        db=env["LMS_DB_CONTAINER"],
        volume="%s_postgres_data" % project,
        compose=["docker", "compose", "-p", project, "-f", _compose_file(workdir, project, env["LMS_DB_PORT"])],
    )
    compose(s, "up", "-d", "--wait")
    gen = subprocess.run([sys.executable, os.path.join(LMS, "generate_data.py"), "--scale", "1"], capture_output=True)
    load = subprocess.run(
        container.psql_argv(s["db"], "lms_slncity", "lms_user"), input=gen.stdout, env=env, capture_output=True
    )
    assert gen.returncode == 0 and load.returncode == 0, load.stderr
    s["seeded"] = counts(s)
    assert all(n > 0 for n in s["seeded"].values())
    s["identity"] = volume_identity(s)
    return s  # the engine fixture removes everything with the engine


def compose(s, *args, check=True):
    proc = subprocess.run(s["compose"] + list(args), env=s["env"], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError("docker compose %s failed: %s" % (" ".join(args), proc.stderr))
    return proc


def counts(s):
    run = lambda argv, data=None: container.subprocess_runner(argv, data, env=s["env"])  # noqa: E731
    return container.count_rows(run, s["db"], "lms_slncity", "lms_user", CRITICAL_TABLES)


def volume_identity(s):
    """Name, mount point and the inode of the data directory: a volume removed and created again
    under the same name gets a new directory (Docker's CreatedAt is the directory's mtime here,
    which PostgreSQL's own writes move, so it is no identity)."""
    out = s["engine"].docker("volume", "inspect", "--format", "{{.Name}} {{.Mountpoint}}", s["volume"], check=False)
    if out.returncode != 0:
        return None
    name, mountpoint = out.stdout.split()
    return name, mountpoint, os.stat(mountpoint).st_ino


def play(s, *extra_args, **extra_vars):
    """ansible-playbook playbooks/pin.yml against the throwaway stack; (rc, changed, output)."""
    inventory = os.path.join(s["workdir"], "inventory.yml")
    with open(inventory, "w", encoding="utf-8") as handle:
        json.dump(
            {
                "all": {
                    "children": {
                        "production": {
                            "hosts": {
                                "localhost": {
                                    "ansible_connection": "local",
                                    "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                                }
                            }
                        }
                    },
                    "vars": {
                        "datasafe_compose_project": s["project"],
                        "datasafe_db_container": s["db"],
                        "datasafe_db_volume": "postgres_data",
                        "datasafe_pin_labels": {"io.datasafe.test": "1"},
                    },
                }
            },
            handle,
        )
    argv = [ANSIBLE_PLAYBOOK, "-i", inventory, os.path.join(REPO, "playbooks", "pin.yml"), *extra_args]
    if extra_vars:
        argv += ["-e", json.dumps(extra_vars)]
    env = dict(s["env"], ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, env=env, check=False)
    out = " ".join((proc.stdout + proc.stderr).split())
    recap = RECAP.search(out)
    return proc.returncode, int(recap.group(2)) if recap else None, out


@pytest.fixture(scope="module")
def pinned(stack):
    """The playbook's four steps: check mode reports a change and starts nothing, the run pins,
    a second check and run change nothing."""
    rc, changed, out = play(stack, "--check")
    assert (rc, changed) == (0, 1), out
    assert not pin.status(container.subprocess_runner, stack["volume"])["exists"]
    rc, changed, out = play(stack)
    assert (rc, changed) == (0, 1), out
    assert pin.status(container.subprocess_runner, stack["volume"])["pinned"]
    assert play(stack, "--check")[:2] == (0, 0)
    assert play(stack)[:2] == (0, 0)
    return stack


def _supported(engine, needs):
    if needs == "volume-prune-all":
        return "--all" in engine.docker("volume", "prune", "--help", check=False).stdout
    raise AssertionError("unknown feature %s" % needs)


def _api(engine, method, path):
    """One Engine API request over the unix socket, the way a web UI or a mounted socket does it."""

    class Unix(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(120)
            self.sock.connect(engine.sock)

    conn = Unix("localhost")
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def _attack_ids(kind):
    return [a["id"] for a in ATTACKS[kind]]


def _prepare(s, attack):
    if attack.get("needs") and not _supported(s["engine"], attack["needs"]):
        pytest.skip("this Docker engine has no %s (the attack does not exist here)" % attack["needs"])
    if attack["stack"] == "down":
        compose(s, "down")  # never -v here; the pin is now the only holder of the volume
        assert not any(s["db"] == n for n in s["engine"].docker("ps", "-a", "--format", "{{.Names}}").stdout.split())
    else:
        compose(s, "up", "-d", "--wait")


def _assert_all_there(s):
    assert volume_identity(s) == s["identity"], "the volume was deleted (or recreated empty)"
    assert pin.status(container.subprocess_runner, s["volume"])["pinned"], "the pin is gone"
    compose(s, "up", "-d", "--wait")
    assert counts(s) == s["seeded"]


@pytest.mark.parametrize("attack", ATTACKS["cli"], ids=_attack_ids("cli"))
def test_docker_clients_cannot_delete_the_pinned_volume(pinned, attack):
    _prepare(pinned, attack)
    fill = {"{volume}": [pinned["volume"]], "{compose}": pinned["compose"][:]}
    argv = [part for word in shlex.split(attack["cmd"]) for part in fill.get(word, [word])]
    proc = subprocess.run(argv, env=pinned["env"], capture_output=True, text=True, check=False)
    if attack["id"].startswith("volume-rm") or attack["id"].startswith("compose-down"):
        assert "in use" in proc.stderr, (proc.returncode, proc.stderr)
    _assert_all_there(pinned)


@pytest.mark.parametrize("attack", ATTACKS["api"], ids=_attack_ids("api"))
def test_the_engine_api_cannot_delete_the_pinned_volume(pinned, attack):
    _prepare(pinned, attack)
    status, body = _api(pinned["engine"], attack["method"], attack["path"].replace("{volume}", pinned["volume"]))
    if attack["method"] == "DELETE":
        assert status == 409 and "in use" in body, (status, body)
    _assert_all_there(pinned)


def test_system_prune_keeps_the_database_image_the_pin_uses(pinned):
    # with the stack down, only the pin uses the image: without it, prune -a would remove it and
    # `compose up` would need a registry this host may not reach
    assert pinned["engine"].docker("image", "inspect", PG_IMAGE, check=False).returncode == 0


def test_control_an_unpinned_volume_is_deleted_by_the_same_clients(engine):
    """Without a pin, the same commands do delete a volume on this engine: the tests can fail."""
    for argv in (["docker", "volume", "rm"], ["docker", "volume", "prune", "-f"]):
        name = "dstest-unpinned-%s" % uuid.uuid4().hex[:8]
        engine.docker("volume", "create", "--label", "io.datasafe.test=1", name)
        engine.docker("run", "--rm", "-v", "%s:/d" % name, "--entrypoint", "touch", PG_IMAGE, "/d/row")
        subprocess.run(argv + ([name] if argv[-1] == "rm" else []), env=engine.env, capture_output=True, check=False)
        assert engine.docker("volume", "inspect", name, check=False).returncode != 0, argv


# --- the module: check mode, idempotence, refusals -----------------------------------------------


def test_a_stopped_pin_is_reported_and_started_again(pinned):
    run = container.subprocess_runner
    name = pin.pin_name(pinned["volume"])
    pinned["engine"].docker("stop", name)
    query = run_module("volume_pin", {"volume": pinned["volume"], "state": "query"})
    assert not query["failed"] and not query["pinned"] and not query["changed"]
    assert "VOLUME NOT PINNED" in query["msg"] and "not running" in query["msg"]
    required = run_module("volume_pin", {"volume": pinned["volume"], "state": "query", "required": True})
    assert required["failed"] and "VOLUME NOT PINNED" in required["msg"]
    dry = run_module("volume_pin", {"volume": pinned["volume"], "from_container": pinned["db"]}, check_mode=True)
    assert dry["changed"] and dry["commands"] == [["docker", "start", name]]
    assert not pin.status(run, pinned["volume"])["running"]
    done = run_module("volume_pin", {"volume": pinned["volume"], "from_container": pinned["db"]})
    assert done["changed"] and done["pinned"] and pin.status(run, pinned["volume"])["pinned"]


def test_absent_removes_only_the_pin_and_check_mode_removes_nothing(pinned):
    run = container.subprocess_runner
    args = {"volume": pinned["volume"], "state": "absent"}
    dry = run_module("volume_pin", args, check_mode=True)
    assert dry["changed"] and pin.status(run, pinned["volume"])["pinned"]
    assert play(pinned, datasafe_pin_state="absent")[:2] == (0, 1)
    assert not pin.status(run, pinned["volume"])["exists"]
    assert volume_identity(pinned) == pinned["identity"]
    assert run_module("volume_pin", args)["changed"] is False
    assert play(pinned)[:2] == (0, 1)  # pinned again for whatever runs after


def test_a_missing_volume_is_refused_and_not_created(engine):
    name = "dstest-novolume-%s" % uuid.uuid4().hex[:8]
    result = run_module("volume_pin", {"volume": name, "image": PG_IMAGE})
    assert result["failed"] and "does not exist" in result["msg"] and "docker compose up -d" in result["msg"]
    assert engine.docker("volume", "inspect", name, check=False).returncode != 0
    assert engine.docker("container", "inspect", pin.pin_name(name), check=False).returncode != 0


def test_a_foreign_container_with_the_pins_name_is_left_alone(engine):
    name = "dstest-foreign-%s" % uuid.uuid4().hex[:8]
    engine.docker("volume", "create", "--label", "io.datasafe.test=1", name)
    engine.docker("create", "--name", pin.pin_name(name), "--label", "io.datasafe.test=1", PG_IMAGE)
    for state in ("present", "absent"):
        result = run_module("volume_pin", {"volume": name, "image": PG_IMAGE, "state": state})
        assert result["failed"] and "not a datasafe pin" in result["msg"]
    assert engine.docker("container", "inspect", pin.pin_name(name), check=False).returncode == 0


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ({"volume": "bad name;rm", "image": "x"}, "not a Docker volume name"),
        ({"volume": "v"}, "give image, or from_container"),
        ({"volume": "v", "image": "no-such-image:never"}, "does not exist"),
    ],
)
def test_bad_input_is_refused_naming_the_problem(engine, args, problem):
    result = run_module("volume_pin", args)
    assert result["failed"] and problem in result["msg"]
