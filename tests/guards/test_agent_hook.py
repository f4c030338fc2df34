"""The agents' pre-execution hook: installed by playbooks/agent_hook.yml into settings that
already hold other hooks, then fed real payloads of each agent through the installed command,
run the way the agents run it (a shell, the payload on stdin).

Forbidden commands are blocked with the rule and the reason (exit 2 for Claude Code and Gemini
CLI, a deny answer for Cursor); benign ones are allowed; broken input is blocked. ``absent``
restores each file exactly as it was.
"""

import copy
import json
import os
import subprocess
import sys

import pytest
from ansible.module_utils.datasafe import agent_hook
from guard_corpus import CMD_BENIGN, CMD_DESTRUCTIVE

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")

# Settings as a user may already have them: other keys, other hooks on the same event.
EXISTING = {
    "claude": {
        "model": "opus",
        "permissions": {"allow": ["Bash(git status)"]},
        "hooks": {
            "PreToolUse": [{"matcher": "Edit", "hooks": [{"type": "command", "command": "/usr/local/bin/lint-edit"}]}],
            "Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}],
        },
    },
    "gemini": {
        "theme": "GitHub",
        "hooks": {"AfterTool": [{"matcher": "*", "hooks": [{"type": "command", "command": "log"}]}]},
    },
    "cursor": {"version": 1, "hooks": {"beforeShellExecution": [{"command": "./hooks/audit.sh"}]}},
}


def payload(agent, command):
    if agent == "claude":
        return {
            "session_id": "s1",
            "transcript_path": "/tmp/t.jsonl",
            "cwd": "/",
            "hook_event_name": "PreToolUse",
            "tool_name": "Bash",
            "tool_input": {"command": command, "description": "run it"},
        }
    if agent == "gemini":
        return {
            "session_id": "s1",
            "transcript_path": "/tmp/t.json",
            "cwd": "/",
            "hook_event_name": "BeforeTool",
            "timestamp": "2026-12-01T20:00:00Z",
            "tool_name": "run_shell_command",
            "tool_input": {"command": command, "description": "run it"},
        }
    return {
        "hook_event_name": "beforeShellExecution",
        "conversation_id": "c1",
        "generation_id": "g1",
        "workspace_roots": ["/"],
        "command": command,
        "cwd": "/",
    }


def play(home, *extra, **extra_vars):
    inventory = os.path.join(home, "inventory.json")
    with open(inventory, "w", encoding="utf-8") as handle:
        json.dump({"production": {"hosts": {"localhost": {"ansible_connection": "local"}}}}, handle)
    variables = {
        "ansible_python_interpreter": sys.executable,
        "datasafe_agent_hook_user": "root",
        "datasafe_agent_hook_home": home,
    }
    variables.update(extra_vars)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    argv = [ANSIBLE_PLAYBOOK, "-i", inventory, os.path.join(REPO, "playbooks", "agent_hook.yml")]
    proc = subprocess.run(
        argv + ["-e", json.dumps(variables), *extra], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 0, out
    return int(out.split("changed=")[1].split()[0])


def settings(home, agent):
    with open(agent_hook.settings_path(agent, home), encoding="utf-8") as handle:
        return json.load(handle)


def installed_command(home, agent):
    event = agent_hook.EVENT_OF[agent]
    for item in settings(home, agent)["hooks"][event]:
        for hook in item.get("hooks", [item]):
            if agent_hook.is_hook_command(hook["command"]):
                return hook["command"]
    raise AssertionError("no datasafe hook in %s's settings" % agent)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A home whose agents' settings already hold other hooks; the hook installed by the playbook."""
    root = str(tmp_path_factory.mktemp("agent-home"))
    for agent, content in EXISTING.items():
        path = agent_hook.settings_path(agent, root)
        os.makedirs(os.path.dirname(path))
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(content, handle)
    assert play(root, "--check") == 1
    assert all(settings(root, a) == EXISTING[a] for a in EXISTING)  # check mode wrote nothing
    assert play(root) == 1
    assert play(root) == 0 and play(root, "--check") == 0
    return root


def test_the_install_merges_and_keeps_everything_else(home):
    for agent, before in EXISTING.items():
        after = settings(home, agent)
        event = agent_hook.EVENT_OF[agent]
        for key in before:
            if key != "hooks":
                assert after[key] == before[key]
        for other_event, items in before["hooks"].items():
            if other_event != event:
                assert after["hooks"][other_event] == items
        assert after["hooks"][event][: len(before["hooks"].get(event, []))] == before["hooks"].get(event, [])
        assert len(after["hooks"][event]) == len(before["hooks"].get(event, [])) + 1
    assert settings(home, "claude")["hooks"]["PreToolUse"][-1]["matcher"] == "Bash"
    assert settings(home, "gemini")["hooks"]["BeforeTool"][-1]["matcher"] == "run_shell_command"


def run_hook(home, agent, text):
    """The installed command, run as the agents run it: through a shell, the call on stdin."""
    return subprocess.run(
        ["/bin/sh", "-c", installed_command(home, agent)], input=text, capture_output=True, text=True, check=False
    )


FORBIDDEN = [(cmd, rule) for cmd, rule in CMD_DESTRUCTIVE if rule.startswith(("cmd-compose", "cmd-docker", "sql-"))][
    :6
] + [("docker stop datasafe-pin-lms_postgres_data", "cmd-stop-volume-pin")]
BENIGN = CMD_BENIGN[:5]


@pytest.mark.parametrize("agent", agent_hook.AGENTS)
def test_forbidden_commands_are_blocked_with_rule_and_reason(home, agent):
    for command, rule in FORBIDDEN:
        proc = run_hook(home, agent, json.dumps(payload(agent, command)))
        if agent == "cursor":
            answer = json.loads(proc.stdout)
            assert proc.returncode == 0 and answer["permission"] == "deny", (command, proc)
            message = answer["agent_message"]
        else:
            assert proc.returncode == 2, (command, proc)
            message = proc.stderr
        assert rule in message and "instead:" in message, (command, message)


@pytest.mark.parametrize("agent", agent_hook.AGENTS)
def test_benign_commands_are_allowed(home, agent):
    for command in BENIGN:
        proc = run_hook(home, agent, json.dumps(payload(agent, command)))
        assert proc.returncode == 0, (command, proc.stderr)
        if agent == "cursor":
            assert json.loads(proc.stdout) == {"permission": "allow"}


BROKEN = [
    ("not json", "not valid JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"tool_name": "Bash"}', "hook_event_name"),
]


@pytest.mark.parametrize("agent", agent_hook.AGENTS)
def test_broken_input_is_blocked(home, agent):
    cases = BROKEN + [(json.dumps(dict(payload(agent, "ls"), hook_event_name="SomethingElse")), "SomethingElse")]
    shell_call = copy.deepcopy(payload(agent, "ls"))
    if agent == "cursor":
        shell_call["command"] = 42
    else:
        shell_call["tool_input"] = {"cmd": "ls"}
    cases.append((json.dumps(shell_call), "no command string"))
    for text, why in cases:
        proc = run_hook(home, agent, text)
        if agent == "cursor":
            answer = json.loads(proc.stdout)
            assert answer["permission"] == "deny" and why in answer["agent_message"], (text, proc)
        else:
            assert proc.returncode == 2 and why in proc.stderr, (text, proc)


def test_a_time_out_and_an_engine_error_block(home, tmp_path):
    # An agent that never finishes writing its payload: the hook cannot judge before its timer
    # runs out, however fast the machine (a complete payload can be judged within the timer).
    command = installed_command(home, "claude").replace("--timeout 10", "--timeout 0.5")
    with subprocess.Popen(
        ["/bin/sh", "-c", command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        proc.stdin.write(json.dumps(payload("claude", "ls"))[:-1])
        proc.stdin.flush()
        returncode = proc.wait(timeout=120)  # stdin stays open: only the hook's timer can end it
        stderr = proc.stderr.read()
        proc.stdin.close()
    assert returncode == 2 and "did not answer within" in stderr
    bad_rules = tmp_path / "rules.yml"
    bad_rules.write_text("- {id: Not An Id, regex: x}\n")
    command = installed_command(home, "claude").replace(" hook ", " --deny-rules %s hook " % bad_rules)
    proc = subprocess.run(
        ["/bin/sh", "-c", command], input=json.dumps(payload("claude", "ls")), capture_output=True, text=True
    )
    assert proc.returncode == 2 and "the guard failed" in proc.stderr


def test_other_tools_are_not_the_guards_business(home):
    edit = dict(payload("claude", "x"), tool_name="Edit", tool_input={"file_path": "/tmp/x"})
    assert run_hook(home, "claude", json.dumps(edit)).returncode == 0


def test_absent_removes_only_datasafes_entry(home):
    assert play(home, datasafe_agent_hook_state="absent") == 1
    assert all(settings(home, a) == EXISTING[a] for a in EXISTING)
    assert play(home, datasafe_agent_hook_state="absent") == 0
    assert play(home) == 1  # installed again for any test running after


def test_settings_that_are_not_plain_json_are_left_untouched(tmp_path):
    path = agent_hook.settings_path("gemini", str(tmp_path))
    os.makedirs(os.path.dirname(path))
    text = '{\n  // my comment\n  "theme": "GitHub"\n}\n'
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    with pytest.raises(agent_hook.SettingsError, match="left untouched"):
        agent_hook.install("gemini", str(tmp_path), "/x/datasafe-guard hook --agent gemini")
    with open(path, encoding="utf-8") as handle:
        assert handle.read() == text


def test_a_new_settings_file_is_private_and_the_entry_is_updated_in_place(tmp_path):
    result = agent_hook.install("claude", str(tmp_path), "/a/datasafe-guard hook --agent claude")
    assert result["changed"] and os.stat(result["path"]).st_mode & 0o777 == 0o600
    moved = agent_hook.install("claude", str(tmp_path), "/b/datasafe-guard hook --agent claude")
    hooks = settings(str(tmp_path), "claude")["hooks"]["PreToolUse"]
    assert moved["changed"] and len(hooks) == 1 and hooks[0]["hooks"][0]["command"].startswith("/b/")


_TABLES = """
import json, sys
sys.path.insert(0, sys.argv[2])
import pgbed  # noqa: F401  (the engine on the import path)
if sys.argv[1] != "fresh":
    from ansible.module_utils.datasafe import bashlex_cache
    assert bashlex_cache.install(sys.argv[1])
import bashlex.parser as p
t = p.yaccparser
print(json.dumps([sorted((k, sorted(v.items())) for k, v in t.action.items()),
                  sorted((k, sorted(v.items())) for k, v in t.goto.items()), [str(x) for x in t.productions]]))
"""


def test_the_parser_table_cache_gives_bashlexs_own_tables(tmp_path):
    """The hook loads bashlex's LALR tables from a cache (bashlex_cache): they must be exactly
    the tables bashlex computes itself, on the first run (cache filled) and the next (cache read)."""
    tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def tables(mode):
        proc = subprocess.run([sys.executable, "-c", _TABLES, mode, tests], capture_output=True, text=True, check=True)
        return proc.stdout

    fresh = tables("fresh")
    assert tables(str(tmp_path)) == fresh  # computed and stored
    assert len(list(tmp_path.iterdir())) == 1
    assert tables(str(tmp_path)) == fresh  # read from the cache
    (next(tmp_path.iterdir())).write_text('{"action": {}, "goto": {}, "productions": 1}')
    assert tables(str(tmp_path)) == fresh  # a foreign file is not used
