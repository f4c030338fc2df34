"""stack_start: the database first and proven, then the application, readiness asked, not slept.

Pure logic (ready.wait_for, URL checks, container states) with fake clocks and runners; then
the module itself against a real throwaway compose stack of the demo app (its own project,
ports and volume, removed afterwards by testbed/remove-test-stack.sh).
"""

import json
import os
import subprocess
import urllib.request
import uuid

import pytest
from ansible.module_utils.datasafe import container, ready
from fakes import FakeClock
from harness import run_module
from pgbed import CRITICAL_TABLES, LMS, REPO, free_port

# --- pure logic ------------------------------------------------------------------------------


def fake_run(states, logs="FATAL: boom"):
    """A docker runner that knows container states (``name: "running healthy"``) and logs."""
    calls = []

    def run(argv, data=None):
        calls.append(argv)
        if argv[:2] == ["docker", "inspect"]:
            name = argv[-1]
            return (0, states[name] + "\n", "") if name in states else (1, "", "No such object: %s" % name)
        if argv[:2] == ["docker", "logs"]:
            return 0, logs, ""
        raise AssertionError("unexpected command %s" % argv)

    run.calls = calls
    return run


def test_wait_for_returns_the_seconds_waited_once_the_probe_answers():
    clock = FakeClock()
    answers = iter([(False, "refused"), (False, "refused"), (True, "")])
    waited = ready.wait_for("x", lambda: next(answers), fake_run({}), interval=0.1, clock=clock, sleep=clock.sleep)
    assert waited == pytest.approx(0.2)


def test_wait_for_times_out_naming_the_last_answer():
    clock = FakeClock()
    with pytest.raises(ready.NotReady, match=r"GET u: no answer within 2s \(last answer: HTTP 500\)"):
        ready.wait_for(
            "GET u", lambda: (False, "HTTP 500"), fake_run({}), timeout=2, interval=0.5, clock=clock, sleep=clock.sleep
        )


def test_a_fast_start_never_asks_which_containers_to_watch():
    clock = FakeClock()
    asked = []
    answers = iter([(False, ""), (True, "")])
    ready.wait_for(
        "x", lambda: next(answers), fake_run({}), watch=lambda: asked.append(1) or [], clock=clock, sleep=clock.sleep
    )
    assert asked == []


@pytest.mark.parametrize("state", ["exited ", "dead ", "running unhealthy"])
def test_a_watched_container_that_died_ends_the_wait_at_once_with_its_log(state):
    clock = FakeClock()
    run = fake_run({"app": state})
    with pytest.raises(ready.NotReady) as caught:
        ready.wait_for(
            "GET u", lambda: (False, "refused"), run, watch=["app"], timeout=300, clock=clock, sleep=clock.sleep
        )
    assert clock.now < 2.5  # not the 300 s timeout
    assert "container app is %s" % state.split()[-1] in str(caught.value) and "FATAL: boom" in str(caught.value)


def test_a_vanished_container_ends_the_wait():
    clock = FakeClock()
    with pytest.raises(ready.NotReady, match="container app is missing"):
        ready.wait_for(
            "x", lambda: (False, ""), fake_run({}), watch=["app"], timeout=60, clock=clock, sleep=clock.sleep
        )


def test_a_starting_or_running_container_is_waited_for():
    clock = FakeClock()
    answers = iter([(False, "")] * 25 + [(True, "")])
    run = fake_run({"db": "running starting"})
    assert ready.wait_for("x", lambda: next(answers), run, watch=["db"], clock=clock, sleep=clock.sleep) > 2
    assert any(c[:2] == ["docker", "inspect"] for c in run.calls)


@pytest.mark.parametrize("url", ["", "ftp://127.0.0.1/health", "127.0.0.1:5002/health", "http:///health"])
def test_only_http_urls_with_a_host_are_polled(url):
    with pytest.raises(ValueError, match="not an http"):
        ready.check_url(url)


# --- the module against a real compose stack ---------------------------------------------------


def compose_env(project, db_port, app_port):
    return dict(
        os.environ,
        COMPOSE_PROJECT_NAME=project,
        LMS_DB_CONTAINER="%s-pg" % project,
        LMS_BACKEND_CONTAINER="%s-backend" % project,
        LMS_DB_PORT=str(db_port),
        LMS_BACKEND_PORT=str(app_port),
        LMS_BACKEND_IMAGE="lms-backend:%s" % project,
    )


@pytest.fixture(scope="module")
def stack():
    project = "dstest-ss-%s" % uuid.uuid4().hex[:8]
    db_port, app_port = free_port(), free_port()
    env = compose_env(project, db_port, app_port)
    compose = ["docker", "compose", "-p", project, "-f", os.path.join(LMS, "docker-compose.prod.yml")]

    def sh(*args, **kw):
        return subprocess.run(list(args), env=env, capture_output=True, text=True, check=True, **kw)

    info = dict(
        project=project,
        env=env,
        compose=compose,
        db=env["LMS_DB_CONTAINER"],
        backend=env["LMS_BACKEND_CONTAINER"],
        url="http://127.0.0.1:%d/health" % app_port,
        sh=sh,
    )
    try:
        sh(*compose, "build")
        sh(*compose, "up", "-d", "--wait", "postgres")
        gen = subprocess.run(
            ["python3", os.path.join(LMS, "generate_data.py"), "--scale", "1"], capture_output=True, check=True
        )
        subprocess.run(container.psql_argv(info["db"], "lms_slncity", "lms_user"), input=gen.stdout, check=True)
        info["seeded"] = container.count_rows(
            container.subprocess_runner, info["db"], "lms_slncity", "lms_user", CRITICAL_TABLES
        )
        yield info
    finally:
        subprocess.run(
            [os.path.join(REPO, "testbed", "remove-test-stack.sh"), project], capture_output=True, check=False
        )


def database(stack, compare_to):
    """The database option as the safe update passes it: count and compare after down."""
    return dict(
        service="postgres",
        container=stack["db"],
        user="lms_user",
        name="lms_slncity",
        tables=CRITICAL_TABLES,
        compare_to=compare_to,
        label="after down",
    )


def start(stack, check_mode=False, **overrides):
    args = dict(
        project_src=LMS,
        project_name=stack["project"],
        files=["docker-compose.prod.yml"],
        database=database(stack, stack["seeded"]),
        services=["backend"],
        dependencies=False,
        wait_url=stack["url"],
        # generous: the backend took over 60 s to answer in a CI run beside the rest of the suite
        wait_timeout=300,
    )
    args.update(overrides)
    old = os.environ.copy()
    os.environ.update(stack["env"])  # the task's `environment:` in a playbook
    try:
        return run_module("stack_start", args, check_mode=check_mode)
    finally:
        os.environ.clear()
        os.environ.update(old)


def down(stack):
    stack["sh"](*stack["compose"], "down")  # never -v: the rows must be there for the next test


def running(stack, name):
    proc = subprocess.run(["docker", "inspect", "--format", "{{.State.Running}}", name], capture_output=True, text=True)
    return proc.returncode == 0 and proc.stdout.strip() == "true"


def health(stack):
    with urllib.request.urlopen(stack["url"], timeout=5) as response:  # noqa: S310  (loopback URL built here)
        return response.status, json.loads(response.read())


def counts(stack):
    return container.count_rows(container.subprocess_runner, stack["db"], "lms_slncity", "lms_user", CRITICAL_TABLES)


def test_from_a_stopped_stack_it_starts_the_database_counts_then_serves(stack):
    down(stack)
    result = start(stack)
    assert not result["failed"], result["msg"]
    assert result["changed"]
    assert result["counts"] == stack["seeded"] and result["problems"] == []
    assert set(result["waited"]) == {"postgres", "url"}
    assert [cmd[-1] for cmd in result["commands"]] == ["postgres", "backend"]
    assert "--no-deps" in result["commands"][1]
    assert health(stack)[0] == 200
    assert sorted(result["containers"]) == sorted([stack["db"], stack["backend"]])


def test_lost_rows_stop_it_before_the_application_starts(stack):
    down(stack)
    more = dict(stack["seeded"], visits=stack["seeded"]["visits"] + 7)  # a snapshot with rows the data lacks
    result = start(stack, database=database(stack, more))
    assert result["failed"]
    assert "row counts after down" in result["msg"] and "visits" in result["msg"]
    assert "nothing else was started" in result["msg"]
    assert [p["table"] for p in result["problems"]] == ["visits"]
    assert running(stack, stack["db"]) and not running(stack, stack["backend"])
    assert counts(stack) == stack["seeded"]


def test_an_endpoint_that_never_answers_fails_after_the_timeout_saying_so(stack):
    closed = "http://127.0.0.1:%d/health" % free_port()
    result = start(stack, wait_url=closed, wait_timeout=2)
    assert result["failed"]
    assert "GET %s: no answer within 2s" % closed in result["msg"]
    assert counts(stack) == stack["seeded"]


def test_every_service_but_a_running_database_starts_by_name(stack):
    stack["sh"](*stack["compose"], "stop", "backend")
    result = start(stack, database=None, services=[], exclude_services=["postgres"])
    assert not result["failed"], result["msg"]
    assert result["commands"] == [result["commands"][0][:-2] + ["--no-deps", "backend"]]
    assert running(stack, stack["backend"]) and health(stack)[0] == 200
    assert result["containers"] == [stack["backend"]]


@pytest.mark.parametrize(
    "overrides, problem",
    [
        ({"services": ["backend"], "exclude_services": ["postgres"]}, "not both"),
        ({"services": ["backend; docker volume prune -f"]}, "is not a compose service name"),
        ({"wait_url": "file:///etc/passwd"}, "not an http(s) URL"),
        ({"wait_timeout": 0}, "wait_timeout must be at least 1 s"),
        ({"verify": {"db_service": "postgres; docker volume prune -f"}}, "verify.db_service"),
        ({"verify": {"wait_healthy": -1}}, "verify.wait_healthy must be 0 (judge at once) or a number of seconds"),
    ],
)
def test_bad_input_is_refused_before_anything_starts(stack, overrides, problem):
    down(stack)
    result = start(stack, **overrides)
    assert result["failed"] and problem in result["msg"]
    assert result["changed"] is False
    assert not running(stack, stack["db"]) and not running(stack, stack["backend"])


def test_check_mode_shows_the_commands_and_starts_nothing(stack):
    down(stack)
    result = start(stack, check_mode=True)
    assert not result["failed"] and result["changed"]
    assert len(result["commands"]) == 2
    assert not running(stack, stack["db"]) and not running(stack, stack["backend"])
    start(stack)  # leave it serving
    assert counts(stack) == stack["seeded"]


def test_a_snapshot_that_is_not_counts_is_refused_before_anything_starts(stack):
    down(stack)
    result = start(stack, database=database(stack, dict(stack["seeded"], visits="many")))
    assert result["failed"] and result["changed"] is False
    assert "database.compare_to must map table names to whole numbers" in result["msg"]
    assert not running(stack, stack["db"]) and not running(stack, stack["backend"])
    start(stack)  # leave it serving


def start_backend_and_verify(stack, **verify):
    """As a restore starts its stack: the backend only (the database runs), then the stack check."""
    stack["sh"](*stack["compose"], "up", "-d", "--wait", "postgres")  # whatever the test before left
    stack["sh"](*stack["compose"], "stop", "backend")
    return start(stack, database=None, services=[], exclude_services=["postgres"], verify=verify)


def test_verify_checks_the_started_stack_in_the_same_run(stack):
    result = start_backend_and_verify(stack, db_service="postgres", wait_healthy=300)
    assert not result["failed"], result["msg"]
    checked = result["stack"]
    assert checked["problems"] == []
    assert checked["expected_volume"] == "%s_postgres_data" % stack["project"]
    assert checked["volume"]["name"] == checked["expected_volume"] and checked["volume"]["system_identifier"]
    backend = checked["services"]["backend"]
    assert backend["running"] and backend["health"] == "healthy"  # Docker's, or its own healthcheck run now
    assert checked["services"]["postgres"]["running"]
    assert health(stack)[0] == 200


def test_verify_fails_after_the_start_when_the_data_is_not_on_the_named_volume(stack):
    result = start_backend_and_verify(stack, db_service="postgres", volume="not_its_volume")
    assert result["failed"]
    assert result["msg"].startswith(
        "stack_start: started, but the stack check failed: volume %s_not_its_volume does not exist" % stack["project"]
    )
    assert result["stack"]["problems"]
    assert running(stack, stack["backend"])  # it was started; the check only judges it
    assert counts(stack) == stack["seeded"]
