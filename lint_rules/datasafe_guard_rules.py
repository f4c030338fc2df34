"""ansible-lint rules: flag tasks that destroy the database or its volume, before they ever run.

Loaded from ``rulesdir: [lint_rules]`` in ``.ansible-lint`` (or ``ansible-lint -r lint_rules -R``).
The shell and SQL rules ask datasafe's own guard engine (module_utils/datasafe), so lint,
the CLI and the modules give the same answer. Module names match short, FQCN and
``ansible.legacy.*`` forms alike (only the last dotted component counts).

Templated values (``{{ ... }}``) are judged with each template replaced by a plain word; a
refusal that only comes from not being able to read the template (unparseable, dynamic program)
is left to the runtime guard in safe_sql / safe_command, which sees the rendered value.
"""

import os
import re
import shlex
import sys

from ansiblelint.rules import AnsibleLintRule

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The engine lives in ansible.module_utils.datasafe, exactly as the modules import it.
sys.path.insert(0, os.path.join(_REPO, "module_utils"))
import datasafe_path  # noqa: E402,F401
from ansible.module_utils.datasafe import guard_cmd, guard_sql  # noqa: E402

_TEMPLATE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
# Refusals that mean "cannot read it" rather than "it is destructive".
_UNREADABLE = {"sql-unparseable", "sql-psql-meta", "cmd-unparseable", "cmd-dynamic", "cmd-wrapped-unverifiable"}
_TRUE = {"true", "yes", "on", "1", "y", "t"}


def _module(task):
    """Short module name of a task: community.docker.docker_volume -> docker_volume."""
    return str(task["action"]["__ansible_module__"]).rsplit(".", 1)[-1]


def _truthy(value):
    return value is True or str(value).strip().lower() in _TRUE


def _detemplate(text):
    return _TEMPLATE.sub("jinja_value", text)


def _definite(findings, templated):
    if templated:
        return [f for f in findings if f.rule not in _UNREADABLE]
    return findings


def _message(findings):
    return "; ".join("%s: %s (instead: %s)" % (f.rule, f.reason, f.instead) for f in findings)


def _breakglass(task):
    return _module(task) in ("safe_sql", "safe_command") and _truthy(task["action"].get("allow_destructive"))


def _absent(value):
    return str(value) == "absent"


class _DestroyingOptionRule(AnsibleLintRule):
    """A task of one of ``modules`` whose ``option`` set so that ``destroys(value)`` deletes data.

    Not a rule itself (no ``id``: ansible-lint loads only the subclasses below).
    """

    id = ""
    severity = "VERY_HIGH"
    tags = ["datasafe", "data-loss"]
    version_changed = "0.1.0"
    modules = ()
    option, unset = None, None
    destroys = staticmethod(_truthy)
    message = ""

    def matchtask(self, task, file=None):
        if _module(task) in self.modules and self.destroys(task["action"].get(self.option, self.unset)):
            return self.message
        return False


class ComposeRemoveVolumesRule(_DestroyingOptionRule):
    """docker_compose_v2 with remove_volumes deletes postgres_data."""

    id = "datasafe-compose-remove-volumes"
    description = "docker_compose_v2 (or docker_compose) with remove_volumes: true deletes the named volumes."
    modules, option = ("docker_compose_v2", "docker_compose"), "remove_volumes"
    message = "remove_volumes: true deletes the postgres_data volume; stop the stack without it"


class VolumeAbsentRule(_DestroyingOptionRule):
    """docker_volume with state absent deletes a volume."""

    id = "datasafe-volume-absent"
    description = "docker_volume with state: absent deletes the volume and the database files in it."
    modules, option, unset, destroys = ("docker_volume",), "state", "present", staticmethod(_absent)
    message = "docker_volume state: absent deletes the volume; leave volumes alone"


class PruneVolumesRule(_DestroyingOptionRule):
    """docker_prune with volumes: true deletes unused volumes."""

    id = "datasafe-prune-volumes"
    description = "docker_prune with volumes: true deletes every unused volume (postgres_data when the stack is down)."
    modules, option = ("docker_prune",), "volumes"
    message = "docker_prune volumes: true deletes unused volumes; prune images/containers only"


class DatabaseAbsentRule(_DestroyingOptionRule):
    """postgresql_db with state absent drops a database."""

    id = "datasafe-db-absent"
    description = "postgresql_db with state: absent is DROP DATABASE."
    modules, option, unset, destroys = ("postgresql_db",), "state", "present", staticmethod(_absent)
    message = "postgresql_db state: absent drops the database; restore beside it and swap names instead"


def _command_findings(task):
    """What the command guard says about a shell/command/raw/safe_command task (None if not one)."""
    module = _module(task)
    if module not in ("shell", "command", "raw", "safe_command") or _breakglass(task):
        return None
    action = task["action"]
    argv = action.get("argv")
    if isinstance(argv, list) and argv:
        words = [str(w) for w in argv]
        templated = any(_TEMPLATE.search(w) for w in words)
        findings = guard_cmd.judge(argv=[_detemplate(w) for w in words])
        return _definite(findings, templated)
    text = action.get("cmd") if action.get("cmd") is not None else action.get("_raw_params")
    if text is None:
        return None
    text = " ".join(str(w) for w in text) if isinstance(text, list) else str(text)
    templated = bool(_TEMPLATE.search(text))
    if module == "command":
        # command does not use a shell: judge its words, as it would run them
        try:
            words = shlex.split(_detemplate(text))
        except ValueError:
            return []  # ansible itself refuses broken quoting at run time
        findings = guard_cmd.judge(argv=words)
    else:
        findings = guard_cmd.judge(line=_detemplate(text))
    return _definite(findings, templated)


class CommandGuardRule(AnsibleLintRule):
    """shell/command/raw (and safe_command) tasks the command guard refuses."""

    id = "datasafe-command-guard"
    description = (
        "A shell, command, raw or safe_command task runs a command that datasafe's command guard "
        "refuses (docker compose down -v, docker volume rm/prune, setup scripts, rm of the volume, ...). "
        "SQL given to psql inside such a task is reported by datasafe-sql-guard."
    )
    severity = "VERY_HIGH"
    tags = ["datasafe", "data-loss", "command-shell"]
    version_changed = "0.1.0"

    def matchtask(self, task, file=None):
        findings = [f for f in _command_findings(task) or () if not f.rule.startswith("sql-")]
        return _message(findings) if findings else False


class SqlGuardRule(AnsibleLintRule):
    """postgresql_query / postgresql_script / safe_sql with SQL the SQL guard refuses."""

    id = "datasafe-sql-guard"
    description = (
        "A postgresql_query, postgresql_script or safe_sql task, or psql inside a shell/command/raw "
        "task, runs SQL that datasafe's SQL guard refuses (TRUNCATE, DROP TABLE/DATABASE, "
        "DELETE/UPDATE without a real WHERE, ...)."
    )
    severity = "VERY_HIGH"
    tags = ["datasafe", "data-loss"]
    version_changed = "0.1.0"

    def matchtask(self, task, file=None):
        in_command = [f for f in _command_findings(task) or () if f.rule.startswith("sql-")]
        if in_command:
            return _message(in_command)
        module = _module(task)
        action = task["action"]
        if module not in ("postgresql_query", "postgresql_script", "safe_sql") or _breakglass(task):
            return False
        sql = None
        if module == "postgresql_query":
            sql = action.get("query")
            if sql is None:
                sql = action.get("_raw_params")
            if sql is None and action.get("path_to_script"):  # older community.postgresql option
                sql = self._read(action["path_to_script"], file)
        elif module == "postgresql_script":
            path = action.get("path")
            if isinstance(path, str) and os.path.basename(path) == guard_cmd.CLEAN_SEED:
                return "cmd-clean-seed: clean-seed.sql clears all data (instead: never run it against production)"
            sql = self._read(path, file)
        else:
            sql = action.get("sql")
        if not isinstance(sql, str):
            return False
        templated = bool(_TEMPLATE.search(sql))
        findings = _definite(guard_sql.judge(_detemplate(sql)), templated)
        return _message(findings) if findings else False

    @staticmethod
    def _read(path, file):
        """The script's SQL, when the path is literal and the file is there (relative to the playbook)."""
        if not isinstance(path, str) or _TEMPLATE.search(path):
            return None
        candidates = [path]
        if file is not None and not os.path.isabs(path):
            base = os.path.dirname(str(file.path))
            candidates = [
                os.path.join(base, path),
                os.path.join(base, "files", path),
                os.path.join(base, "..", "files", path),
                path,
            ]
        for candidate in candidates:
            if os.path.isfile(candidate):
                with open(candidate, encoding="utf-8", errors="replace") as handle:
                    return handle.read()
        return None
