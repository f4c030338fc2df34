"""AWX as code (awx/configure.yml + awx/objects.yml), checked without an AWX.

The objects are rendered by Ansible itself (as the playbook sees them); the schedules' rrules
are read with python-dateutil (the library AWX itself reads them with) and must fire at 02:00
and 02:30 in the lab's time zone, every day; the workflow must be backup -> off-site -> drill;
every template must notify on failure; the playbook must pass a syntax check, and refuse to
start without the sites' SSH key before it talks to any AWX.
"""

import datetime
import json
import os
import subprocess

import pytest
import yaml
from dateutil import rrule, tz
from fleetbed import BIN, REPO

PLAYBOOK = os.path.join(REPO, "awx", "configure.yml")
OBJECTS = os.path.join(REPO, "awx", "objects.yml")


def ansible_env():
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env["PATH"] = BIN + os.pathsep + env.get("PATH", "")
    return env


@pytest.fixture(scope="module")
def objects():
    """Every datasafe_awx_* variable of objects.yml, rendered by Ansible."""
    with open(OBJECTS) as handle:
        names = sorted(yaml.safe_load(handle))
    expression = "{{ {%s} | to_json }}" % ", ".join("'%s': %s" % (n, n) for n in names)
    proc = subprocess.run(
        [os.path.join(BIN, "ansible"), "localhost", "-c", "local", "-e", "@" + OBJECTS]
        + ["-e", "ansible_python_interpreter=" + os.path.join(BIN, "python")]
        + ["-m", "ansible.builtin.debug", "-a", "msg=" + expression],
        capture_output=True,
        text=True,
        check=False,
        env=dict(
            ansible_env(),
            ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
            ANSIBLE_STDOUT_CALLBACK="json",
        ),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the JSON document, between the task-timing callback's lines
    document, _ = json.JSONDecoder().raw_decode(proc.stdout[proc.stdout.index("\n{") + 1 :])
    msg = document["plays"][0]["tasks"][0]["hosts"]["localhost"]["msg"]
    return json.loads(msg) if isinstance(msg, str) else msg


@pytest.fixture(scope="module")
def tasks():
    with open(PLAYBOOK) as handle:
        return {task["name"]: task for task in yaml.safe_load(handle)[0]["tasks"]}


def test_the_playbook_passes_a_syntax_check():
    proc = subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), "--syntax-check", PLAYBOOK],
        capture_output=True,
        text=True,
        check=False,
        env=ansible_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_without_the_ssh_key_it_refuses_before_talking_to_awx():
    proc = subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), PLAYBOOK, "-e", "controller_host=https://awx.example.invalid"],
        capture_output=True,
        text=True,
        check=False,
        env=ansible_env(),
    )
    assert proc.returncode != 0
    assert "vault_datasafe_awx_ssh_key is empty" in proc.stdout and "Nothing was changed" in proc.stdout
    assert "ok=0" in proc.stdout and "TASK [Organization]" not in proc.stdout


def test_a_job_template_for_every_protocol_job_each_running_a_playbook_of_the_checkout(objects):
    templates = objects["datasafe_awx_job_templates"]
    playbooks = {t["playbook"] for t in templates}
    assert playbooks >= {
        "playbooks/backup.yml",
        "playbooks/offsite.yml",
        "playbooks/restore_drill.yml",
        "playbooks/safe_update.yml",
        "playbooks/verify.yml",
        "playbooks/status.yml",
    }
    for template in templates:
        assert os.path.isfile(os.path.join(REPO, template["playbook"])), template
    assert len({t["name"] for t in templates}) == len(templates)


def test_every_template_notifies_on_failure_runs_alone_and_can_be_limited_to_one_site(tasks, objects):
    notification = objects["datasafe_awx_notification_name"]
    for name in ("Job templates", "Workflow backup -> off-site -> drill"):
        module = next(v for k, v in tasks[name].items() if k.startswith("awx.awx."))
        assert module["notification_templates_error"] == ["{{ datasafe_awx_notification_name }}"]
        assert module["allow_simultaneous"] is False and module["ask_limit_on_launch"] is True
    assert tasks["Notification on failure"]["no_log"] and tasks["SSH credential for the sites"]["no_log"]
    assert notification


def next_runs(rule_text, count):
    rule = rrule.rrulestr(rule_text, forceset=True)
    after = datetime.datetime(2026, 1, 10, 12, 0, tzinfo=tz.gettz("Europe/Berlin"))
    runs, current = [], after
    for _ in range(count):
        current = rule.after(current)
        runs.append(current)
    return runs


def test_schedules_run_the_backup_at_0200_and_the_drill_at_0230_every_night(objects):
    schedules = {s["unified_job_template"]: s for s in objects["datasafe_awx_schedules"]}
    assert set(schedules) == {"datasafe backup", "datasafe restore drill"}
    names = {t["name"] for t in objects["datasafe_awx_job_templates"]}
    assert set(schedules) <= names
    lab = tz.gettz(objects["datasafe_awx_timezone"])
    for template, (hour, minute) in (("datasafe backup", (2, 0)), ("datasafe restore drill", (2, 30))):
        text = schedules[template]["rrule"]
        assert text.startswith("DTSTART;TZID=Europe/Berlin:") and " RRULE:FREQ=DAILY;INTERVAL=1" in text
        runs = next_runs(text, 7)
        assert [(r.astimezone(lab).hour, r.astimezone(lab).minute) for r in runs] == [(hour, minute)] * 7
        assert [(b - a) for a, b in zip(runs, runs[1:])] == [datetime.timedelta(days=1)] * 6
    backup = next_runs(schedules["datasafe backup"]["rrule"], 1)[0]
    drill = next_runs(schedules["datasafe restore drill"]["rrule"], 1)[0]
    assert drill - backup == datetime.timedelta(minutes=30)


def test_the_workflow_is_backup_then_offsite_then_drill(objects):
    nodes = {n["identifier"]: n for n in objects["datasafe_awx_workflow"]["nodes"]}
    names = {t["name"] for t in objects["datasafe_awx_job_templates"]}
    chain, current = [], "backup"
    while current:
        node = nodes[current]
        assert node["unified_job_template"]["type"] == "job_template"
        assert node["unified_job_template"]["name"] in names
        assert node["unified_job_template"]["organization"]["name"] == objects["datasafe_awx_organization"]
        assert not node["related"].get("failure_nodes") and not node["related"].get("always_nodes")
        chain.append(node["unified_job_template"]["name"])
        following = node["related"].get("success_nodes", [])
        current = following[0]["identifier"] if following else None
    assert chain == ["datasafe backup", "datasafe off-site copy", "datasafe restore drill"]
    assert len(chain) == len(nodes)
