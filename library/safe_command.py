#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Run a command only if datasafe's command guard allows it."""

DOCUMENTATION = r"""
---
module: safe_command
short_description: Run a command or command line, refusing anything that destroys the database or its volume
description:
  - Judges the command with datasafe's command guard before anything runs. A command line is
    parsed with a real bash parser (bashlex), so C(&&), C(;), pipes, subshells, C($(...)),
    backticks, C(bash -c), C(sudo), C(env), C(ssh host '...'), C(docker exec) and
    C(docker compose exec) are all seen through.
  - Refused, however written; C(docker compose down -v) / C(--volumes) (any position, any global
    flags, combined short flags), C(compose rm -v), C(docker volume rm)/C(prune),
    C(docker system prune --volumes), C(docker rm -v), C(setup-development.sh) and
    C(setup-production.sh), C(psql -f clean-seed.sql), C(dropdb), deleting files under Docker's
    volume directory or the PostgreSQL data directory, and SQL given to C(psql) (C(-c),
    here-strings, here-documents, C(echo ... |)) that the SQL guard refuses. A command line
    that does not parse, or whose program name is computed at run time, is refused.
  - The only way past a refusal is break-glass, O(allow_destructive) with a O(reason), accepted
    only when a verified backup younger than O(breakglass_max_age) minutes is in O(backup_dir);
    every attempt is written to the change log.
  - Before a break-glass command runs, a named restore point (C(datasafe-break-glass-<UTC time>))
    is created in the database given by O(container), O(database) and O(user) when that server
    archives WAL (continuous recovery), so C(playbooks/recover.yml) can recover to just before
    it. When it cannot be created, nothing runs.
version_added: "0.1.0"
author: datasafe maintainers
options:
  cmd:
    description:
      - A whole command line, run by C(bash -o pipefail -c) (so a failing stage of a pipe fails
        the task). Mutually exclusive with O(argv).
    type: str
  argv:
    description: The command as a list of words, run without a shell. Mutually exclusive with O(cmd).
    type: list
    elements: str
  chdir:
    description: Directory to run the command in.
    type: path
  stdin:
    description:
      - Data passed to the command's standard input. It is judged too, as SQL when C(psql) reads
        it and as a command line when a shell reads it.
    type: str
  creates:
    description: If this path exists, the command is not run and nothing changes.
    type: path
  removes:
    description: If this path does not exist, the command is not run and nothing changes.
    type: path
  read_sql_files:
    description:
      - Also read SQL files given to C(psql) (C(-f FILE), C(< FILE)) on the managed host and judge
        their content with the SQL guard. C(clean-seed.sql) is refused by name either way.
    type: bool
    default: true
  protected_paths:
    description:
      - Extra paths that must never be deleted, on top of C(/var/lib/docker), its C(volumes),
        C(/var/lib/postgresql) and the rootless Docker directory (for example the mountpoint of
        the C(postgres_data) volume when Docker's data root is elsewhere).
    type: list
    elements: path
    default: []
  deny_rules:
    description:
      - Project deny rules added to the built-in ones (which cannot be removed), usually from
        the inventory variable C(datasafe_guard_deny_rules). Each is a mapping with C(id), either
        C(regex) or C(argv_prefix), C(reason), C(instead), and C(applies_to) (C(cmd), or C(sql)
        for SQL given to psql).
  container:
    description:
      - The PostgreSQL container the break-glass command may touch; with O(database) and O(user),
        a named restore point is created there before the command runs (RV(breakglass.restore_point)).
      - Without them a break-glass command gets no restore point (the result says so).
    required: false
  database:
    description: The database for the restore point before a break-glass command (with O(container) and O(user)).
    required: false
  user:
    description: The role that creates the restore point (with O(container) and O(database)).
    required: false
extends_documentation_fragment:
  - datasafe
  - datasafe.breakglass
attributes:
  check_mode:
    support: full
    description:
      - Nothing runs. Refusals are reported exactly as in a real run; an allowed command is
        reported as C(changed) with RV(would_run), unless O(creates)/O(removes) say it would be skipped.
  diff_mode:
    support: none
requirements:
  - bashlex and pglast where the guard judges, on the controller (the action plugin, C(plugins/action/safe_command.py),
    judges there and the managed host needs only Python's standard library) or, without the action plugin, on the
    managed host
notes:
  - Like M(ansible.builtin.command), the module cannot know what an arbitrary command changed,
    so C(changed) is true whenever it ran; use O(creates)/O(removes) or C(changed_when).
  - The guard reads the command as written. What a script does inside, or what a variable holds
    at run time, it cannot see; scripts known to clear data are refused by name.
seealso:
  - module: safe_sql
"""

EXAMPLES = r"""
- name: Stop the stack (data stays in the postgres_data volume)
  safe_command:
    cmd: docker compose -f docker-compose.prod.yml down
    chdir: "{{ datasafe_compose_dir }}"

- name: Count users the protocol's way
  safe_command:
    argv: [docker, exec, lms-postgres, psql, -U, lms_user, -d, lms_slncity, -c, "SELECT COUNT(*) FROM users;"]
  changed_when: false

- name: Remove a scratch volume (break-glass, after a fresh verified backup)
  safe_command:
    argv: [docker, volume, rm, lms_import_scratch]
    allow_destructive: true
    reason: "CHG-1235: scratch volume of the finished import"

- name: Empty a staging table by psql (break-glass; a restore point in the database first)
  safe_command:
    argv: [docker, exec, lms-postgres, psql, -U, lms_user, -d, lms_slncity, -f, /srv/import/cleanup-batch-42.sql]
    allow_destructive: true
    reason: "CHG-1236: staging rows of the finished import"
    container: lms-postgres
    database: lms_slncity
    user: lms_user
"""

RETURN = r"""
findings:
  description: The guard's findings (empty when allowed); each has rule, statement, reason, instead.
  returned: always
  type: list
  elements: dict
  sample: [{"rule": "cmd-compose-down-volumes", "statement": "docker compose down -v",
            "reason": "docker compose down -v/--volumes deletes the named volumes, postgres_data included",
            "instead": "docker compose down (without -v): the data stays in the postgres_data volume"}]
refused:
  description: Whether the guard refused the command (and break-glass did not let it through).
  returned: always
  type: bool
executed:
  description: Whether the command ran.
  returned: always
  type: bool
would_run:
  description: In check mode, the command that a real run would execute.
  returned: check mode, when allowed
  type: list
  elements: str
cmd:
  description: The argv that ran (a command line runs as C(bash -o pipefail -c LINE)).
  returned: when executed
  type: list
  elements: str
rc:
  description: Exit status of the command.
  returned: when executed
  type: int
stdout:
  description: Standard output of the command.
  returned: when executed
  type: str
stderr:
  description: Standard error of the command.
  returned: when executed
  type: str
breakglass:
  description:
    - The backup that justified break-glass (path, manifest, end, age_seconds, sha256), when used.
    - C(restore_point), the named restore point created just before it (null with
      C(restore_point_skipped) saying why - check mode, no database given, no WAL archiving).
  returned: when break-glass was used
  type: dict
"""

import os
import shlex

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import breakglass, guard_cmd, guarded, modulekit, runner, specs, verdict

GUARD = guarded.Guard(
    "safe_command",
    guard_cmd.available,
    "bashlex and pglast",
    lambda: guard_cmd.BASHLEX_IMPORT_ERROR or guard_cmd.guard_sql.PGLAST_IMPORT_ERROR,
)


def main():
    module = AnsibleModule(
        argument_spec=specs.spec(
            specs.BREAKGLASS,
            cmd=dict(type="str"),
            argv=dict(type="list", elements="str"),
            chdir=dict(type="path"),
            stdin=dict(type="str"),
            creates=dict(type="path"),
            removes=dict(type="path"),
            read_sql_files=dict(type="bool", default=True),
            protected_paths=dict(type="list", elements="path", default=[]),
            container=dict(type="str"),
            database=dict(type="str"),
            user=dict(type="str"),
        ),
        required_together=[("container", "database", "user")],
        mutually_exclusive=[("cmd", "argv")],
        required_one_of=[("cmd", "argv")],
        required_if=specs.BREAKGLASS_REQUIRED_IF,
        supports_check_mode=True,
    )
    p = module.params
    result = dict(changed=False, findings=[], refused=False, executed=False)
    if p["argv"] is not None and not p["argv"]:
        module.fail_json(msg="argv is empty", **result)
    if p["chdir"] and not os.path.isdir(p["chdir"]):
        module.fail_json(msg="chdir %s is not a directory" % p["chdir"], **result)
    text = p["cmd"] if p["cmd"] is not None else shlex.join(p["argv"])
    subject = verdict.command_subject(p)
    # a verdict reached on the controller (plugins/action/safe_command.py) is valid only for exactly this command
    evidence = modulekit.call(
        module,
        lambda: GUARD.judge(p, subject, lambda rules: _judge_here(p, subject, rules), text, module.check_mode, result),
        None,
        guarded.ERRORS,
        **result,
    )

    argv = list(p["argv"]) if p["argv"] is not None else ["/bin/bash", "-o", "pipefail", "-c", p["cmd"]]
    if p["creates"] and os.path.exists(p["creates"]):
        module.exit_json(msg="skipped: %s exists" % p["creates"], **result)
    if p["removes"] and not os.path.exists(p["removes"]):
        module.exit_json(msg="skipped: %s does not exist" % p["removes"], **result)
    modulekit.call(
        module,
        lambda: guarded.restore_point(runner.for_module(module), p, evidence, module.check_mode),
        None,
        (breakglass.Refused,),
        **result,
    )
    if module.check_mode:
        result.update(changed=True, would_run=argv, msg="check mode: would run %s" % text)
        module.exit_json(**result)

    rc, out, err = module.run_command(argv, cwd=p["chdir"], data=p["stdin"], binary_data=True)
    result.update(executed=True, changed=True, cmd=argv, rc=rc, stdout=out, stderr=err)
    breakglass.log_outcome(p, "safe_command", evidence, "succeeded" if rc == 0 else "failed", module.check_mode, rc=rc)
    if rc != 0:
        module.fail_json(msg="command failed (exit %d): %s" % (rc, (err or "").strip()[-2000:]), **result)
    module.exit_json(**result)


def _judge_here(p, subject, rules):
    """The command guard on the host; relative SQL file names given to psql are read from ``chdir``."""
    cwd_before = os.getcwd()
    if p["chdir"]:
        os.chdir(p["chdir"])
    try:
        return guard_cmd.judge_subject(subject, rules)
    finally:
        os.chdir(cwd_before)


if __name__ == "__main__":
    main()
