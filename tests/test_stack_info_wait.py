"""stack_info wait_healthy: a service whose healthcheck still says "starting" is waited for
(bounded), not called broken; a stopped service is a problem at once.

A real container stands in for a freshly started service: its healthcheck first runs after
4 s, so for 4 s Docker says "starting", whatever the machine's speed.
"""

import subprocess
import time
import uuid

import pytest
from modharness import run_module
from pgbed import TEST_LABEL, docker

IMAGE = "datasafe/python:3.11-bookworm"


@pytest.fixture
def starting_service():
    project = "dstest-wait-%s" % uuid.uuid4().hex[:8]
    name = "%s-app" % project
    docker(
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "none",
        "--label",
        "%s=1" % TEST_LABEL,
        "--label",
        "com.docker.compose.project=%s" % project,
        "--label",
        "com.docker.compose.service=app",
        "--health-cmd",
        "true",
        "--health-interval",
        "4s",
        IMAGE,
        "sleep",
        "600",
    )
    try:
        yield project, name
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def problems(project, wait):
    result = run_module("stack_info", project=project, db_service="app", wait_healthy=wait, fail_on_problems=False)
    return [p for p in result["problems"] if "service app" in p], result


def test_without_a_wait_a_starting_service_is_a_problem(starting_service):
    project, name = starting_service
    found, result = problems(project, 0)
    assert found == ["service app (%s) is starting" % name]


def test_with_a_wait_it_is_judged_once_docker_says_healthy(starting_service):
    project, _ = starting_service
    began = time.monotonic()
    found, result = problems(project, 30)
    assert found == []
    assert result["services"]["app"]["health"] == "healthy"
    assert time.monotonic() - began >= 2  # it really waited for the first healthcheck


def test_the_wait_is_bounded(starting_service):
    project, name = starting_service
    began = time.monotonic()
    found, _ = problems(project, 1)
    assert found == ["service app (%s) is starting" % name]
    assert time.monotonic() - began < 3.5


def test_a_stopped_service_is_not_waited_for(starting_service):
    project, name = starting_service
    docker("stop", "-t", "0", name)
    began = time.monotonic()
    found, _ = problems(project, 30)
    assert found == ["service app (%s) is exited" % name]
    assert time.monotonic() - began < 5
