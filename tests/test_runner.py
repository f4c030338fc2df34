"""runner.py, the one command runner: real processes (cheap ones), and the fake the unit tests inject."""

import os
import sys

import pytest
from ansible.module_utils.datasafe import container, ready, runner
from fakes import FakeRunner


def test_run_feeds_stdin_and_returns_rc_stdout_stderr():
    rc, out, err = runner.run(
        [sys.executable, "-c", "import sys; d = sys.stdin.read(); print(d.upper()); sys.exit(3)"], data="abc"
    )
    assert (rc, out.strip(), err) == (3, "ABC", "")


def test_run_adds_env_to_the_inherited_environment_without_putting_values_in_argv():
    argv = [sys.executable, "-c", "import os; print(os.environ['DATASAFE_T'], os.environ['PATH'] != '')"]
    rc, out, _ = runner.run(argv, env={"DATASAFE_T": "secret"})
    assert rc == 0 and out.split() == ["secret", "True"] and "secret" not in " ".join(argv)


def test_run_binary_returns_bytes():
    rc, out, _ = runner.run([sys.executable, "-c", "import sys; sys.stdout.buffer.write(bytes([0, 255]))"], binary=True)
    assert rc == 0 and out == b"\x00\xff"


def test_a_missing_program_is_rc_127_with_its_name():
    rc, _, err = runner.run(["datasafe-no-such-program-xyz"])
    assert rc == 127 and "datasafe-no-such-program-xyz" in err


def test_a_command_over_its_timeout_is_stopped_and_says_so():
    with pytest.raises(runner.CommandTimeout, match="did not finish within 0.5s"):
        runner.run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)


def test_spawn_streams_and_the_caller_checks_the_exit_status(tmp_path):
    src = tmp_path / "in"
    src.write_bytes(b"x" * 100000)
    with open(src, "rb") as handle:
        proc = runner.spawn([sys.executable, "-c", "import sys; print(len(sys.stdin.buffer.read()))"], stdin=handle)
        out, _ = proc.communicate()
    assert proc.returncode == 0 and out.strip() == b"100000"


def test_the_engines_take_the_injected_runner():
    fake = FakeRunner({("docker", "exec"): (0, "accepting connections\n", "")})
    assert ready.pg_ready(fake, "db", "u", "lms") == (True, "accepting connections")
    fake = FakeRunner({("docker", "exec"): (0, "a,1\nb,2\n", "")})
    assert container.count_rows(fake, "db", "lms", "u", ["a", "b"]) == {"a": 1, "b": 2}
    argv, data, _ = fake.calls[0]
    assert argv[:3] == ["docker", "exec", "-i"] and "REPEATABLE READ" in data
    with pytest.raises(AssertionError, match="unexpected command"):
        FakeRunner()(["rm", "-rf", os.sep + "nothing"])
