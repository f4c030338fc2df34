"""stack_info wait_healthy: a service whose healthcheck still says "starting" is waited for
(bounded), not called broken, and its own healthcheck is run meanwhile; a stopped service is a
problem at once.

Real containers stand in for freshly started services. Their healthcheck interval is 60 s, so
Docker says "starting" for the whole test, whatever the machine's speed: a "healthy" can then
only come from the healthcheck the module ran itself.
"""

import json
import subprocess
import time
import uuid

import pytest
from ansible.module_utils.datasafe import stack
from fakes import FakeClock
from harness import run_module
from pgbed import docker, throwaway_labels

IMAGE = "datasafe/python:3.11-bookworm"


@pytest.fixture
def service():
    """Start a one-container "project" with the given healthcheck; removed afterwards."""
    names = []

    def start(health_cmd, command=("sleep", "600"), interval="60s"):
        project = "dstest-wait-%s" % uuid.uuid4().hex[:8]
        name = "%s-app" % project
        names.append(name)
        docker(
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "none",
            *throwaway_labels(),
            "--label",
            "com.docker.compose.project=%s" % project,
            "--label",
            "com.docker.compose.service=app",
            "--health-cmd",
            health_cmd,
            "--health-interval",
            interval,
            IMAGE,
            *command,
        )
        return project, name

    yield start
    for name in names:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def problems(project, wait):
    result = run_module("stack_info", project=project, db_service="app", wait_healthy=wait, fail_on_problems=False)
    return [p for p in result["problems"] if "service app" in p], result


def docker_health(name):
    return json.loads(docker("inspect", name).stdout)[0]["State"]["Health"]["Status"]


def test_without_a_wait_a_starting_service_is_a_problem(service):
    project, name = service("true")
    found, result = problems(project, 0)
    assert found == ["service app (%s) is starting" % name]
    assert result["services"]["app"]["health_checked_now"] is False


def test_with_a_wait_its_own_healthcheck_is_run_now(service):
    project, name = service("true")
    began = time.monotonic()
    found, result = problems(project, 30)
    assert found == []
    assert result["services"]["app"]["health"] == "healthy"
    assert result["services"]["app"]["health_checked_now"] is True
    assert time.monotonic() - began < 20  # not Docker's first check, 60 s after the start
    assert docker_health(name) == "starting"  # Docker has not run it yet


def test_a_failing_healthcheck_is_never_taken_for_healthy_and_the_wait_is_bounded(service):
    project, name = service("false")
    began = time.monotonic()
    found, result = problems(project, 2)
    assert found == ["service app (%s) is starting" % name]
    assert result["services"]["app"]["health_checked_now"] is False
    assert 2 <= time.monotonic() - began < 8


def test_a_healthcheck_that_fails_at_first_is_run_again_until_it_passes(service):
    project, name = service("test -f /tmp/ready", command=("sh", "-c", "sleep 3 && touch /tmp/ready && sleep 600"))
    began = time.monotonic()
    found, result = problems(project, 30)
    assert found == []
    assert result["services"]["app"]["health_checked_now"] is True
    assert 2 <= time.monotonic() - began < 20


def test_a_stopped_service_is_not_waited_for(service):
    project, name = service("true")
    docker("stop", "-t", "0", name)
    began = time.monotonic()
    found, _ = problems(project, 30)
    assert found == ["service app (%s) is exited" % name]
    assert time.monotonic() - began < 5


# --- the pure parts --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config, argv",
    [
        ({"Healthcheck": {"Test": ["CMD", "pg_isready", "-q"]}}, ["pg_isready", "-q"]),
        ({"Healthcheck": {"Test": ["CMD-SHELL", "curl -f x || exit 1"]}}, ["/bin/sh", "-c", "curl -f x || exit 1"]),
        (
            {"Healthcheck": {"Test": ["CMD-SHELL", "check"]}, "Shell": ["/bin/bash", "-o", "pipefail", "-c"]},
            ["/bin/bash", "-o", "pipefail", "-c", "check"],
        ),
        ({"Healthcheck": {"Test": ["NONE"]}}, None),
        ({"Healthcheck": {"Test": ["CMD"]}}, None),
        ({"Healthcheck": {"Test": ["CMD-SHELL"]}}, None),
        ({"Healthcheck": {"Test": ["SOMETHING", "new"]}}, None),
        ({}, None),
    ],
)
def test_the_healthcheck_is_run_as_docker_runs_it(config, argv):
    assert stack.healthcheck_argv(config) == argv


class FakeDocker:
    """Answers ``docker ps``/``inspect`` with a scripted state per listing ({container: (health,
    StartedAt)}, the last one repeated) and records every healthcheck run; ``check_rc`` holds, per
    container, the exit statuses of its runs in order."""

    def __init__(self, states, check_rc):
        self.states, self.check_rc, self.listings, self.checks = list(states), check_rc, 0, []

    def __call__(self, argv, data=None):
        if argv[:2] == ["docker", "ps"]:
            return 0, "ids\n", ""
        if argv[:2] == ["docker", "inspect"]:
            state = self.states[min(self.listings, len(self.states) - 1)]
            self.listings += 1
            infos = [
                {
                    "Name": "/" + name,
                    "Config": {"Labels": {"com.docker.compose.service": name}, "Healthcheck": {"Test": ["CMD", "ok"]}},
                    "State": {"Status": "running", "Running": True, "StartedAt": started, "Health": {"Status": health}},
                }
                for name, (health, started) in state.items()
            ]
            return 0, json.dumps(infos), ""
        if argv[0] == "timeout":
            self.checks.append(argv)
            return self.check_rc[argv[5]].pop(0), "", ""
        raise AssertionError(argv)


def wait(fake, seconds=10):
    clock = FakeClock()
    return stack.wait_healthy(fake, "p", seconds, clock=clock, sleep=clock.sleep), clock


def test_dockers_unhealthy_is_never_overridden_by_a_passing_check():
    fake = FakeDocker([{"a": ("starting", "t1")}, {"a": ("unhealthy", "t1")}], {"a": [1]})
    services, _ = wait(fake)
    assert services["a"]["health"] == "unhealthy" and services["a"]["health_checked_now"] is False


def test_a_pass_holds_only_for_the_run_of_the_container_it_was_made_in():
    # a passes at once; b still starts; then a restarts (new StartedAt) and must pass again
    states = [{"a": ("starting", "t1"), "b": ("starting", "t1")}] * 6 + [
        {"a": ("starting", "t2"), "b": ("starting", "t1")}
    ]
    fake = FakeDocker(states, {"a": [0, 1, 1, 1, 1, 1, 1], "b": [1] * 20})
    services, _ = wait(fake, seconds=5)
    assert services["a"]["health"] == "starting" and services["a"]["health_checked_now"] is False
    assert [c[5] for c in fake.checks].count("a") >= 2


def test_a_failing_check_is_run_again_at_most_once_per_recheck_interval():
    fake = FakeDocker([{"a": ("starting", "t1")}], {"a": [1] * 20})
    services, clock = wait(fake, seconds=5)
    assert services["a"]["health"] == "starting" and clock.now >= 5
    assert 5 <= len(fake.checks) <= 6  # once a second, not at every 0.2 s listing
    # within the healthcheck's timeout (30 s by default), but never past the end of the wait
    assert fake.checks[0] == ["timeout", "--kill-after=2", "5s", "docker", "exec", "a", "ok"]
    assert fake.checks[-1][2] == "1s"


def test_without_a_wait_nothing_is_run():
    fake = FakeDocker([{"a": ("starting", "t1")}], {"a": []})
    services, _ = wait(fake, seconds=0)
    assert services["a"]["health"] == "starting" and fake.checks == []
