"""The nightly job as a systemd timer (datasafe_schedule_method=systemd), by real ansible-playbook runs.

This machine's PID 1 is not systemd, so the playbook runs with datasafe_schedule_systemd_enable=false
and writes the units into a temporary directory: what is proved here is the rendering, the units
passing ``systemd-analyze verify``, the calendar meaning exactly the cron fields' minutes (asked of
``systemd-analyze calendar``), the ExecStart line making a verified backup under ``env -i``,
check mode, idempotence, switching methods both ways, removal, and the refusals (a host not booted
with systemd, a schedule a timer cannot express) changing nothing. Enabling and starting the timer
under a running systemd is not exercised here.
"""

import datetime
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid

import pytest
from ansible.errors import AnsibleFilterError
from ansible.module_utils.datasafe import lock
from backup_helpers import REPO, good_backups
from pgbed import CRITICAL_TABLES

sys.path.insert(0, os.path.join(REPO, "plugins", "filter"))

import datasafe_schedule as schedule  # noqa: E402  (the role's filter plugin, imported as Ansible loads it)

ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
RECAP = re.compile(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")
NEEDS_ANALYZE = pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")


# -- the calendar: systemd's reading of the rendered expression is cron's, minute for minute --------------------


def cron_runs(fields, after, count):
    """The next ``count`` minutes after ``after`` that cron runs ``fields`` (day or weekday is '*': AND)."""
    minutes, hours, days, months, weekdays = (
        schedule.cron_field_values(f, *spec) for f, spec in zip(fields, schedule.FIELDS)
    )
    out, day = [], after.date()
    while len(out) < count:
        if day.month in months and day.day in days and day.isoweekday() % 7 in weekdays:
            for hour in sorted(hours):
                for minute in sorted(minutes):
                    when = datetime.datetime(day.year, day.month, day.day, hour, minute)
                    if when > after:
                        out.append(when)
        day += datetime.timedelta(days=1)
    return out[:count]


def systemd_runs(expression, count):
    proc = subprocess.run(
        ["systemd-analyze", "calendar", "--iterations=%d" % count, expression],
        capture_output=True,
        text=True,
        env=dict(os.environ, TZ="UTC"),
        check=True,
    )
    found = re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", proc.stdout)
    return [datetime.datetime.strptime(t, "%Y-%m-%d %H:%M:%S") for t in found]


@NEEDS_ANALYZE
@pytest.mark.parametrize(
    "fields, expression",
    [
        (("0", "2", "*", "*", "*"), "*-*-* 02:00:00"),
        (("*/15", "1-5", "*", "*", "*"), "*-*-* 01..05:00,15,30,45:00"),
        (("30", "3", "*", "*", "0"), "Sun *-*-* 03:30:00"),
        (("0", "2", "*", "*", "mon-fri"), "Mon..Fri *-*-* 02:00:00"),
        (("0", "2", "*", "*", "5-7"), "Fri..Sun *-*-* 02:00:00"),
        (("0", "2", "*", "*", "0,6"), "Sat,Sun *-*-* 02:00:00"),
        (("0", "4", "1,15", "*", "*"), "*-*-01,15 04:00:00"),
        (("5", "0", "31", "*/3", "*"), "*-01,04,07,10-31 00:05:00"),
        (("0-59/20", "*/8", "*", "jan-mar", "*"), "*-01..03-* 00,08,16:00,20,40:00"),
    ],
)
def test_the_timer_fires_at_exactly_the_minutes_cron_would(fields, expression):
    assert schedule.datasafe_oncalendar(*fields) == expression
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, second=0, microsecond=0)
    expected = cron_runs(fields, now - datetime.timedelta(minutes=1), 7)
    got = systemd_runs(expression, 6)
    assert got in (expected[:6], expected[1:7])  # the clock may pass a minute between the two


@pytest.mark.parametrize(
    "fields, message",
    [
        (("0", "2", "1", "*", "1"), "EITHER"),  # cron ORs day and weekday, a timer ANDs them
        (("0", "2", "1-31", "*", "mon"), "EITHER"),
        (("60", "2", "*", "*", "*"), "datasafe_schedule_minute: 60 is outside 0-59"),
        (("0", "2", "*", "13", "*"), "datasafe_schedule_month: 13 is outside 1-12"),
        (("0", "5/2", "*", "*", "*"), "not a cron step"),
        (("0", "5-1", "*", "*", "*"), "runs backwards"),
        (("0", "2", "L", "*", "*"), "datasafe_schedule_day: 'l' is not a number"),
        (("0", "@daily", "*", "*", "*"), "not a number"),
        (("0", "*/0", "*", "*", "*"), "not a positive number"),
    ],
)
def test_a_schedule_a_timer_cannot_express_is_refused_naming_why(fields, message):
    with pytest.raises(AnsibleFilterError, match=re.escape(message)):
        schedule.datasafe_oncalendar(*fields)


def parse_exec_start(value):
    """ExecStart= back into argv, by systemd's rules for what datasafe_systemd_exec writes."""
    return [w.replace("%%", "%").replace("$$", "$") for w in shlex.split(value)]


def test_exec_start_quoting_round_trips_every_character():
    argv = ["/opt/data safe/bin/datasafe-backup-job", "--log", "/var/log/a b.log", "--env=X=50% off $HOME", "-e"]
    argv += ['label="q"', "back\\slash", ";", "", "it's"]
    line = schedule.datasafe_systemd_exec(argv)
    assert parse_exec_start(line) == argv
    assert "%%" in line and "$$HOME" in line and ' ";" ' in line
    with pytest.raises(AnsibleFilterError, match="absolute"):
        schedule.datasafe_systemd_exec(["datasafe-backup-job"])
    with pytest.raises(AnsibleFilterError, match="control character"):
        schedule.datasafe_systemd_exec(["/bin/job", "a\nb"])


# -- the role, by real ansible-playbook runs against a throwaway database ---------------------------------------


@pytest.fixture
def stack(throwaway_pg, tmp_path):
    project = "dstest-%s" % uuid.uuid4().hex[:8]
    units = tmp_path / "units"
    units.mkdir()
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        json.dumps(  # JSON is YAML
            {
                "all": {
                    "hosts": {
                        "localhost": {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                        }
                    },
                    "children": {"production": {"hosts": {"localhost": {}}}},
                    "vars": {
                        "datasafe_compose_dir": REPO,
                        "datasafe_compose_project": project,
                        "datasafe_db_container": throwaway_pg.container,
                        "datasafe_db_name": throwaway_pg.db,
                        "datasafe_db_user": throwaway_pg.user,
                        "datasafe_critical_tables": CRITICAL_TABLES,
                        "datasafe_backup_dir": str(tmp_path / "backups"),
                        "datasafe_change_log": str(tmp_path / "change-log.txt"),
                        "datasafe_schedule_systemd_dir": str(units),
                        "datasafe_schedule_systemd_enable": False,
                        "datasafe_schedule_log": str(tmp_path / "backup.log"),
                        "datasafe_schedule_lock": str(tmp_path / "job.lock"),
                    },
                }
            }
        )
    )
    unit = "datasafe-backup-%s-%s" % (project, throwaway_pg.db)
    return {
        "pg": throwaway_pg,
        "project": project,
        "root": tmp_path,
        "inventory": str(inventory),
        "units": units,
        "service": units / (unit + ".service"),
        "timer": units / (unit + ".timer"),
        "cron_name": "#Ansible: datasafe nightly backup of %s (%s)" % (throwaway_pg.db, project),
    }


def play(stack, *, check=False, **extra):
    """ansible-playbook playbooks/schedule.yml; returns (exit code, changed count, output)."""
    argv = [ANSIBLE_PLAYBOOK, "-i", stack["inventory"], os.path.join(REPO, "playbooks", "schedule.yml")]
    argv += ["-e", json.dumps(extra)] + (["--check"] if check else [])
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, env=env, check=False)
    out = " ".join((proc.stdout + proc.stderr).split())  # messages may be folded over lines
    recap = RECAP.search(out)
    return proc.returncode, int(recap.group(2)) if recap else None, out


def cron_lines(stack):
    """This stack's lines of the crontab (other tests on the machine may own other entries)."""
    proc = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=False)
    return [line for line in proc.stdout.splitlines() if stack["project"] in line or str(stack["root"]) in line]


def cron_entries(stack):
    return cron_lines(stack).count(stack["cron_name"])


def unit_files(stack):
    return sorted(p.name for p in stack["units"].iterdir())


def directive(text, key):
    values = [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "=")]
    assert len(values) == 1, (key, values)
    return values[0]


@pytest.mark.slow
def test_the_timers_whole_life_one_nightly_job_at_every_step(stack):
    """Install (check mode first), idempotence, the ExecStart line's backup, switching both ways, refusal, removal."""
    try:
        _install_check_verify_and_back_up(stack)
        _switch_refuse_and_remove(stack)
    finally:
        if cron_entries(stack):
            play(stack, datasafe_schedule_state="absent")


def _install_check_verify_and_back_up(stack):
    rc, changed, out = play(stack, check=True, datasafe_schedule_method="systemd")
    assert rc == 0 and changed >= 2, out
    assert unit_files(stack) == []  # check mode wrote nothing

    rc, changed, out = play(stack, datasafe_schedule_method="systemd")
    assert rc == 0 and changed == 2, out
    assert unit_files(stack) == sorted([stack["service"].name, stack["timer"].name])
    assert {oct(p.stat().st_mode & 0o777) for p in stack["units"].iterdir()} == {"0o644"}
    service, timer = stack["service"].read_text(), stack["timer"].read_text()
    assert directive(service, "Type") == "oneshot"
    whoami = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    assert directive(service, "User") == whoami  # the user whose crontab the cron method would use
    assert directive(timer, "OnCalendar") == "*-*-* 02:00:00"
    assert directive(timer, "Persistent") == "true" and directive(timer, "RandomizedDelaySec") == "0"
    assert directive(timer, "Unit") == stack["service"].name and directive(timer, "WantedBy") == "timers.target"
    assert stack["pg"].password not in service + timer
    if shutil.which("systemd-analyze"):  # the template's validate ran it already; check independently
        for path in (stack["service"], stack["timer"]):
            verify = subprocess.run(
                ["systemd-analyze", "verify", "--man=no", str(path)],
                capture_output=True,
                text=True,
                env=dict(os.environ, SYSTEMD_UNIT_PATH="%s:" % stack["units"]),
                check=False,
            )
            assert verify.returncode == 0, verify.stderr

    for check in (True, False):  # a second check, and a second run, change nothing
        rc, changed, out = play(stack, check=check, datasafe_schedule_method="systemd")
        assert rc == 0 and changed == 0, out

    # The service's own command line, run as systemd would (no shell, empty environment).
    argv = parse_exec_start(directive(service, "ExecStart"))
    assert argv[0] == os.path.join(REPO, "bin", "datasafe-backup-job")
    job = subprocess.run(["env", "-i", *argv], capture_output=True, text=True, check=False)
    log = (stack["root"] / "backup.log").read_text()
    assert job.returncode == 0, log[-3000:]
    assert "datasafe backup job finished OK" in log
    made = good_backups(str(stack["root"] / "backups"))
    assert [e["kind"] for e in made] == ["scheduled"] and made[0]["manifest"]["verified"] is True
    assert made[0]["manifest"]["counts"] == stack["pg"].counts()


def _a_held_crontab_waits_and_refuses(stack):
    """Another run editing this user's crontab (its lock held by a live process): the edit waits, then
    fails naming the holder, and the crontab is as it was (crontab has no locking of its own)."""
    held = lock.FileLock(os.path.expanduser("~/.datasafe-crontab.lock"), uuid.uuid4().hex, purpose="a test's edit")
    held.take(wait=300)  # other test runs on this machine may be editing their entries right now
    try:
        before = cron_lines(stack)
        rc, _, out = play(stack, datasafe_schedule_method="cron", datasafe_crontab_lock_wait=2)
        assert rc != 0 and "a test's edit holds the lock" in out and "pid %d" % os.getpid() in out, out
        assert cron_lines(stack) == before and cron_entries(stack) == 0
    finally:
        held.release()


def _switch_refuse_and_remove(stack):
    _a_held_crontab_waits_and_refuses(stack)

    rc, changed, out = play(stack, datasafe_schedule_method="cron")  # systemd -> cron
    assert rc == 0 and changed == 2, out  # the entry written, the units removed
    assert cron_entries(stack) == 1 and unit_files(stack) == []
    crontab = cron_lines(stack)

    if not os.path.isdir("/run/systemd/system"):  # this machine: PID 1 is not systemd
        rc, _, out = play(stack, datasafe_schedule_method="systemd", datasafe_schedule_systemd_enable=True)
        assert rc != 0 and "was not booted with systemd" in out and "datasafe_schedule_method=cron" in out, out
        assert unit_files(stack) == [] and cron_lines(stack) == crontab  # refused before any change

    rc, changed, out = play(stack, datasafe_schedule_method="systemd")  # cron -> systemd
    assert rc == 0 and changed == 3, out  # two units written, the cron entry removed
    assert cron_entries(stack) == 0 and len(unit_files(stack)) == 2

    # systemd-analyze verify (template's validate) really rejects: a calendar injected past the
    # role's conversion fails the task, and the installed timer stays as it was.
    timer = stack["timer"].read_bytes()
    rc, _, out = play(stack, datasafe_schedule_method="systemd", _datasafe_schedule_on_calendar="02:00 tomorrow-ish")
    assert rc != 0 and "Failed to parse calendar specification" in out, out
    assert stack["timer"].read_bytes() == timer

    rc, changed, out = play(stack, datasafe_schedule_state="absent")  # removes the units
    assert rc == 0 and changed == 1 and unit_files(stack) == [] and cron_entries(stack) == 0, out
