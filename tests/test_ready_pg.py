"""ready.wait_pg, the one wait for PostgreSQL (restore, restore drill, pg_ready, stack_start): pure logic
with an injected runner and clock."""

import pytest
from ansible.module_utils.datasafe import ready
from fakes import FakeClock, FakeRunner


def test_wait_pg_polls_pg_isready_until_it_answers_and_returns_the_seconds_waited():
    answers = iter([(2, "", "no response"), (1, "", "rejecting connections"), (0, "accepting connections", "")])
    fake, clock = FakeRunner({("docker", "exec"): lambda argv, data: next(answers)}), FakeClock()
    assert ready.wait_pg(fake, "db", "u", "postgres", 10, clock=clock, sleep=clock.sleep) == 1.0
    assert fake.argvs() == [["docker", "exec", "db", "pg_isready", "-U", "u", "-d", "postgres"]] * 3


def test_wait_pg_asks_over_tcp_when_given_a_host_and_port():
    fake = FakeRunner({("docker", "exec"): (0, "", "")})
    ready.wait_pg(fake, "drill", "u", "postgres", 10, host="127.0.0.1", port=56001)
    assert fake.argvs()[0][-4:] == ["-h", "127.0.0.1", "-p", "56001"]


def test_wait_pg_gives_up_after_its_timeout_with_the_last_answer():
    fake, clock = FakeRunner({("docker", "exec"): (2, "", "no response")}), FakeClock()
    with pytest.raises(ready.NotReady, match="no answer within 3s .last answer: no response"):
        ready.wait_pg(fake, "db", "u", "postgres", 3, clock=clock, sleep=clock.sleep)
    assert clock.now >= 3


def test_a_watched_container_that_exits_ends_the_wait_at_once_with_its_log():
    fake = FakeRunner(
        {
            ("docker", "exec"): (2, "", "no response"),
            ("docker", "inspect"): (0, "exited \n", ""),
            ("docker", "logs"): (0, "", "FATAL: data directory has wrong ownership"),
        }
    )
    clock = FakeClock()
    with pytest.raises(ready.NotReady, match="container db is exited") as exc:
        ready.wait_pg(fake, "db", "u", "postgres", 120, watch=True, clock=clock, sleep=clock.sleep)
    assert "wrong ownership" in str(exc.value) and clock.now < 5
