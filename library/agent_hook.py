#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Install datasafe's pre-execution hook into a coding agent's settings, merged with what is there."""

DOCUMENTATION = r"""
---
module: agent_hook
short_description: Put datasafe's command guard in front of a coding agent's shell tool (merged settings)
description:
  - Adds C(bin/datasafe-guard hook) to the agent's pre-execution hooks, so every shell command
    the agent wants to run is judged by the command guard first and refused commands never run.
  - Claude Code C(~/.claude/settings.json) (C(hooks.PreToolUse), matcher C(Bash)); Gemini CLI
    C(~/.gemini/settings.json) (C(hooks.BeforeTool), matcher C(run_shell_command)); Cursor
    C(~/.cursor/hooks.json) (C(hooks.beforeShellExecution)).
  - The settings are merged, never overwritten; every other key, event and hook stays as it
    was. datasafe recognises its own entry by its command (C(datasafe-guard hook)).
    V(absent) removes only that entry. A file that is not plain JSON is left untouched and the
    module fails, saying so.
version_added: "0.1.0"
author: datasafe maintainers
options:
  agent:
    description: The coding agent whose settings get the hook.
    type: str
    choices: [claude, gemini, cursor]
    required: true
  home:
    description: Home directory of the user whose agent is guarded.
    type: path
    required: true
  owner:
    description: User owning a settings file (and directory) the module creates; existing files keep theirs.
    type: str
  command:
    description:
      - The hook command the agent runs (it must run C(datasafe-guard hook)); required with O(state=present).
    type: str
  timeout:
    description: Seconds the agent waits for the hook (the hook itself blocks after its own --timeout).
    type: int
    default: 15
  state:
    description: V(present) puts datasafe's entry in place; V(absent) removes only it.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
    description: Reports whether the settings would change and writes nothing.
  diff_mode:
    support: full
    description: Shows the settings before and after.
"""

EXAMPLES = r"""
- name: Guard Claude Code's shell for the deploy user
  agent_hook:
    agent: claude
    home: /home/deploy
    owner: deploy
    command: /opt/datasafe/bin/datasafe-guard hook --agent claude

- name: Remove datasafe's hook from Cursor (other hooks stay)
  agent_hook:
    agent: cursor
    home: /home/deploy
    state: absent
"""

RETURN = r"""
path:
  description: The agent's settings file.
  returned: always
  type: str
  sample: /home/deploy/.claude/settings.json
settings:
  description: The settings after the run (in check mode, as they would be).
  returned: success
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import agent_hook, modulekit


def main():
    module = AnsibleModule(
        argument_spec=dict(
            agent=dict(type="str", choices=list(agent_hook.AGENTS), required=True),
            home=dict(type="path", required=True),
            owner=dict(type="str"),
            command=dict(type="str"),
            timeout=dict(type="int", default=15),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        required_if=[("state", "present", ["command"])],
        supports_check_mode=True,
    )
    p = module.params
    uid = gid = None
    if p["owner"]:
        import pwd

        try:
            entry = pwd.getpwnam(p["owner"])
        except KeyError:
            module.fail_json(msg="agent_hook: no user %r on this host" % p["owner"])
        uid, gid = entry.pw_uid, entry.pw_gid
    result = modulekit.call(
        module,
        lambda: agent_hook.install(
            p["agent"], p["home"], p["command"], p["timeout"], p["state"], module.check_mode, uid, gid
        ),
        "agent_hook (%s)" % p["agent"],
        (agent_hook.SettingsError, OSError),
    )
    module.exit_json(
        changed=result["changed"],
        path=result["path"],
        settings=result["after"],
        diff=dict(before=result["before"] or {}, after=result["after"], before_header=result["path"]),
    )


if __name__ == "__main__":
    main()
