"""The agents' pre-execution hook: one tool call in, the command guard's verdict out, in the agent's contract.

Coding agents run shell commands through tool calls that a hook may veto. Each agent documents
its own payload and answer:

- Claude Code ``PreToolUse``: ``{"hook_event_name": "PreToolUse", "tool_name": "Bash",
  "tool_input": {"command": ...}}``; exit 2 blocks, standard error is the reason given to the model.
- Gemini CLI ``BeforeTool``: ``{"hook_event_name": "BeforeTool", "tool_name": "run_shell_command",
  "tool_input": {"command": ...}}``; exit 2 blocks with standard error as the reason (also
  ``{"decision": "deny", "reason": ...}`` on standard output).
- Cursor ``beforeShellExecution``: ``{"hook_event_name": "beforeShellExecution", "command": ...,
  "cwd": ...}``; the answer is JSON on standard output: ``{"permission": "allow" | "deny",
  "user_message": ..., "agent_message": ...}``.

For all of them an exit status other than 2 (Claude Code, Gemini CLI) or an answer that is not
a deny lets the command run, so the hook **fails closed**: JSON it cannot parse, a shape it does
not know, a shell tool call without a command, an engine error or a time-out all block, saying
why. Tool calls that are not shell commands (an agent's file edit) are not the guard's business
and are allowed.

``read_call(text, agent) -> Call``; ``verdict(call, findings) -> Answer``; ``blocked(agent, why)
-> Answer``; an :class:`Answer` is (exit status, standard output, standard error).
"""

import json
import os
import re
import tempfile

from ansible.module_utils.datasafe import files

AGENTS = ("claude", "gemini", "cursor")
EVENTS = {"PreToolUse": "claude", "BeforeTool": "gemini", "beforeShellExecution": "cursor"}
SHELL_TOOLS = {"claude": {"Bash"}, "gemini": {"run_shell_command"}}
EXIT_BLOCK = 2


class HookInputError(ValueError):
    """The payload cannot be read as a tool call of a known agent (the hook blocks)."""


class Call:
    __slots__ = ("agent", "command", "cwd", "shell")

    def __init__(self, agent, command, cwd=None, shell=True):
        self.agent, self.command, self.cwd, self.shell = agent, command, cwd, shell


class Answer:
    __slots__ = ("status", "stdout", "stderr")

    def __init__(self, status, stdout="", stderr=""):
        self.status, self.stdout, self.stderr = status, stdout, stderr

    def __repr__(self):
        return "Answer(%r, %r, %r)" % (self.status, self.stdout, self.stderr)


def _agent_of(payload, agent):
    event = payload.get("hook_event_name")
    by_event = EVENTS.get(event)
    if agent in AGENTS:
        # every agent names its event; a payload without it is not one the hook knows
        if by_event != agent:
            raise HookInputError("hook_event_name %r is not %s's pre-execution event" % (event, agent))
        return agent
    if by_event is None:
        raise HookInputError("unknown payload: hook_event_name %r is none of %s" % (event, ", ".join(sorted(EVENTS))))
    return by_event


def read_call(text, agent="auto"):
    """The tool call in ``text`` (the hook's standard input) for ``agent`` ('auto': by its event name)."""
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise HookInputError("the tool call is not valid JSON (%s)" % exc) from exc
    if not isinstance(payload, dict):
        raise HookInputError("the tool call is not a JSON object")
    agent = _agent_of(payload, agent)
    cwd = payload.get("cwd") if isinstance(payload.get("cwd"), str) else None
    if agent == "cursor":
        command = payload.get("command")
    else:
        tool = payload.get("tool_name")
        if not isinstance(tool, str):
            raise HookInputError("the tool call names no tool (tool_name)")
        if tool not in SHELL_TOOLS[agent]:
            return Call(agent, None, cwd, shell=False)
        tool_input = payload.get("tool_input")
        if not isinstance(tool_input, dict):
            raise HookInputError("the %s tool call has no tool_input object" % tool)
        command = tool_input.get("command")
    if not isinstance(command, str):
        raise HookInputError("the shell tool call carries no command string")
    return Call(agent, command, cwd)


def _reason(findings):
    lines = ["datasafe-guard refused this command (docs/guards.md):"]
    for f in findings:
        lines.append("- %s: %s (instead: %s)" % (f.rule, f.reason, f.instead))
    return "\n".join(lines)


def _deny(agent, reason):
    if agent == "cursor":
        body = {"permission": "deny", "user_message": reason, "agent_message": reason}
        return Answer(0, json.dumps(body), reason + "\n")
    if agent == "gemini":
        return Answer(EXIT_BLOCK, json.dumps({"decision": "deny", "reason": reason}), reason + "\n")
    if agent == "claude":
        return Answer(EXIT_BLOCK, "", reason + "\n")
    # the agent is unknown: block in every contract at once
    body = {"decision": "deny", "reason": reason, "permission": "deny", "user_message": reason, "agent_message": reason}
    return Answer(EXIT_BLOCK, json.dumps(body), reason + "\n")


def allow(agent):
    if agent == "cursor":
        return Answer(0, json.dumps({"permission": "allow"}))
    if agent == "gemini":
        return Answer(0, "{}")
    return Answer(0)


def verdict(call, findings):
    """The answer for a judged call: allowed when there are no findings."""
    if not findings:
        return allow(call.agent)
    return _deny(call.agent, _reason(findings))


def blocked(agent, why):
    """Fail closed: the answer when the call could not be judged (``agent`` None when unknown)."""
    return _deny(agent if agent in AGENTS else None, "datasafe-guard blocked this command: %s" % why)


# --------------------------------------------------------------------------------------------
# Installing the hook into an agent's settings (merged; only datasafe's own entry is touched)
# --------------------------------------------------------------------------------------------

MARKER = "datasafe-guard hook"  # datasafe's entry runs "datasafe-guard [options] hook": see is_hook_command
SETTINGS = {
    "claude": (".claude", "settings.json"),
    "gemini": (".gemini", "settings.json"),
    "cursor": (".cursor", "hooks.json"),
}
EVENT_OF = {"claude": "PreToolUse", "gemini": "BeforeTool", "cursor": "beforeShellExecution"}


class SettingsError(ValueError):
    """An agent's settings file cannot be merged safely (it is left untouched)."""


def settings_path(agent, home):
    return os.path.join(home, *SETTINGS[agent])


def hook_entry(agent, command, timeout):
    """datasafe's entry for ``agent``'s pre-execution event (``timeout`` in seconds)."""
    if agent == "claude":
        return {"matcher": "Bash", "hooks": [{"type": "command", "command": command, "timeout": timeout}]}
    if agent == "gemini":
        hook = {"name": "datasafe-guard", "type": "command", "command": command, "timeout": timeout * 1000}
        hook["description"] = "datasafe: refuse commands that destroy the database or its volume"
        return {"matcher": "run_shell_command", "hooks": [hook]}
    return {"command": command}


def is_hook_command(command):
    """Does a settings entry's command run ``datasafe-guard ... hook``?"""
    return isinstance(command, str) and re.search(r"datasafe-guard\S*\s+(?:\S+\s+)*?hook(?:\s|$)", command) is not None


def _ours(item):
    if not isinstance(item, dict):
        return False
    if is_hook_command(item.get("command")):
        return True
    hooks = item.get("hooks")
    return isinstance(hooks, list) and bool(hooks) and all(_ours(h) for h in hooks)


def merge(settings, agent, entry=None):
    """``settings`` with datasafe's entry put in place (``entry``) or removed (None).

    Everything else stays as it was: other keys, other events, other hooks of the same event,
    their order. Returns (new settings, changed). Raises SettingsError when the file's shape
    is not what the agent documents (then nothing is written).
    """
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        raise SettingsError("the settings are not a JSON object")
    new = json.loads(json.dumps(settings))  # a deep copy
    if agent == "cursor" and entry is not None:
        new.setdefault("version", 1)
    hooks = new.get("hooks")
    if hooks is None:
        if entry is None:
            return settings, False
        hooks = new["hooks"] = {}
    if not isinstance(hooks, dict):
        raise SettingsError("'hooks' is not a JSON object")
    event = EVENT_OF[agent]
    items = hooks.get(event)
    if items is None:
        items = []
    if not isinstance(items, list):
        raise SettingsError("'hooks.%s' is not a list" % event)
    kept = [i for i in items if not _ours(i)]
    if entry is not None:
        mine = [i for i in items if _ours(i)]
        # keep datasafe's entry where it was (first in place), else append it
        at = items.index(mine[0]) if mine else len(items)
        before = [i for i in items[:at] if not _ours(i)]
        kept = before + [entry] + [i for i in items[at:] if not _ours(i)]
        hooks[event] = kept
    elif len(kept) != len(items):
        if kept:
            hooks[event] = kept
        else:  # datasafe's entry was the last one: drop what it alone filled
            del hooks[event]
            if not hooks:
                del new["hooks"]
    return new, new != settings


def read_settings(path):
    """The agent's settings as JSON, None when the file does not exist; SettingsError otherwise."""
    try:
        text = files.read_text(path)
    except OSError as exc:
        raise SettingsError("cannot read %s: %s" % (path, exc)) from exc
    if text is None or not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SettingsError(
            "%s is not plain JSON (%s): left untouched; fix it (or remove its comments) and run again" % (path, exc)
        ) from exc


def write_settings(path, settings, uid=None, gid=None):
    """Write atomically (temporary file, rename), keeping the file's mode and owner; a new file
    (and directory) gets mode 0600 (0700) and ``uid``/``gid``."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700)
        if uid is not None:
            os.chown(directory, uid, gid)
    try:
        st = os.stat(path)
        mode, owner = st.st_mode & 0o7777, (st.st_uid, st.st_gid)
    except FileNotFoundError:
        mode, owner = 0o600, (uid, gid) if uid is not None else None
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".datasafe-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(settings, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if owner is not None:
            os.chown(tmp, *owner)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def install(agent, home, command=None, timeout=10, state="present", check_mode=False, uid=None, gid=None):
    """Put datasafe's hook into (or take it out of) ``agent``'s settings under ``home``.

    Returns {agent, path, changed, before, after}; raises SettingsError and writes nothing when
    the existing file cannot be merged safely.
    """
    if agent not in AGENTS:
        raise SettingsError("unknown agent %r: choose from %s" % (agent, ", ".join(AGENTS)))
    if state == "present" and not is_hook_command(command):
        raise SettingsError("the hook command must run '%s' (got %r)" % (MARKER, command))
    path = settings_path(agent, home)
    before = read_settings(path)
    entry = hook_entry(agent, command, timeout) if state == "present" else None
    after, changed = merge(before, agent, entry)
    if changed and not check_mode:
        write_settings(path, after, uid, gid)
    return dict(agent=agent, path=path, changed=changed, before=before, after=after)
