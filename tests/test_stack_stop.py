"""The stack engine's stop (stack.stop, module stack_stop): it only ever runs ``docker compose stop``
for named, running services. Recorded commands, no Docker: the real stop on a real stack is
tests/restore/test_restore_stop.py."""

import os

import pytest
from ansible.module_utils.datasafe import stack


class Recorder:
    """``run(argv, data=None)``: answers ``docker ps`` with the running services, records every call."""

    def __init__(self, running, stop_rc=0):
        self.running, self.stop_rc, self.calls = running, stop_rc, []

    def __call__(self, argv, data=None):
        self.calls.append(argv)
        if argv[:2] == ["docker", "ps"]:
            return 0, "".join(s + "\n" for s in self.running), ""
        if "stop" in argv:
            return self.stop_rc, "", "" if self.stop_rc == 0 else "no such service: worker"
        raise AssertionError("unexpected command %r" % argv)


def stop(run, services, check_mode=False):
    return stack.stop(run, "lms", ["docker-compose.prod.yml"], "/srv/lms", services, check_mode=check_mode)


def test_stop_runs_docker_compose_stop_for_the_named_services():
    run = Recorder(["postgres", "backend"])
    result = stop(run, ["backend"])
    argv = ["docker", "compose", "-p", "lms", "--project-directory", "/srv/lms"]
    argv += ["-f", os.path.join("/srv/lms", "docker-compose.prod.yml"), "stop", "--", "backend"]
    assert result == {"changed": True, "commands": [argv], "stopped": ["backend"]}
    assert run.calls[-1] == argv
    assert not any("up" in call or "rm" in call or "down" in call for call in run.calls)


def test_check_mode_only_lists_what_runs():
    run = Recorder(["backend"])
    result = stop(run, ["backend"], check_mode=True)
    assert result["changed"] and result["stopped"] == ["backend"] and result["commands"]
    assert [call[:2] for call in run.calls] == [["docker", "ps"]]


def test_nothing_running_stops_nothing_and_changes_nothing():
    run = Recorder(["postgres"])
    assert stop(run, ["backend"]) == {"changed": False, "commands": [], "stopped": []}
    assert len(run.calls) == 1


@pytest.mark.parametrize("services", [[], ["backend; rm -rf /"], ["-v"]])
def test_bad_input_is_refused_before_anything_runs(services):
    run = Recorder(["backend"])
    with pytest.raises(ValueError) as refused:
        stop(run, services)
    assert "service" in str(refused.value)
    assert run.calls == []


def test_a_failed_stop_says_so_with_what_ran():
    run = Recorder(["backend"], stop_rc=1)
    with pytest.raises(stack.StackError) as failed:
        stop(run, ["backend"])
    assert "docker compose stop failed (exit 1)" in str(failed.value)
    assert failed.value.result["commands"][0][-1] == "backend"
