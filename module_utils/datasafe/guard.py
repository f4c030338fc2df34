"""What the guards share: the finding type, the registry of built-in rules, project deny rules.

A guard never answers "allowed" by default: it answers with a list of findings, and only an
empty list means the operation may run. Every built-in rule lives in :data:`RULES` with the
reason it exists and what to do instead, so the modules, the CLI and the lint rules all
explain a refusal in the same words. Projects add their own deny rules (inventory variable
``datasafe_guard_deny_rules``); there is deliberately no way to switch a built-in rule off:
the one legitimate exception is break-glass (see ``breakglass.py``), which is logged.
"""

import re

# rule id -> (why it is refused, what to do instead)
RULES = {
    # --- SQL -------------------------------------------------------------------------------
    "sql-unparseable": (
        "the SQL does not parse with PostgreSQL's own parser, so it cannot be verified",
        "fix the syntax; the guard only lets through SQL it can read completely",
    ),
    "sql-psql-meta": (
        "psql meta-commands (backslash commands) can include files, run shell commands (\\!) or "
        "execute generated SQL (\\gexec), none of which the guard can verify",
        "send plain SQL statements only; put the content of included files inline",
    ),
    "sql-truncate": (
        "TRUNCATE removes every row of the table",
        "delete only the rows you mean with DELETE ... WHERE <condition>, after a backup",
    ),
    "sql-drop-table": (
        "DROP TABLE destroys the table and all its rows",
        "rename it (ALTER TABLE ... RENAME TO ..._old) and drop it later with break-glass, after a backup",
    ),
    "sql-drop-schema": (
        "DROP SCHEMA destroys the schema and, with CASCADE, every table in it",
        "rename the schema instead; drop it later with break-glass, after a backup",
    ),
    "sql-drop-database": (
        "DROP DATABASE destroys the whole database",
        "never in production; restore beside the database and swap names instead (playbooks/restore.yml)",
    ),
    "sql-drop-matview": (
        "DROP MATERIALIZED VIEW destroys stored rows",
        "use REFRESH MATERIALIZED VIEW, or rename it and drop it later with break-glass",
    ),
    "sql-drop-owned": (
        "DROP OWNED destroys every object the role owns, tables included",
        "use REASSIGN OWNED BY ... TO ... to hand the objects to another role",
    ),
    "sql-drop-cascade": (
        "DROP ... CASCADE also drops dependent objects, which can include columns and tables holding data",
        "drop without CASCADE (PostgreSQL then refuses if anything depends on it) and handle dependents explicitly",
    ),
    "sql-drop-column": (
        "ALTER TABLE ... DROP COLUMN destroys that column's values in every row",
        "stop using the column first; drop it later with break-glass, after a backup",
    ),
    "sql-delete-without-where": (
        "DELETE without WHERE removes every row of the table",
        "add a WHERE clause that names exactly the rows to delete",
    ),
    "sql-update-without-where": (
        "UPDATE without WHERE overwrites every row of the table",
        "add a WHERE clause that names exactly the rows to update",
    ),
    "sql-where-always-true": (
        "the WHERE clause is true for every row (a constant or tautology), so it restricts nothing",
        "write a condition on the row's own columns that selects only the intended rows",
    ),
    "sql-where-not-row-specific": (
        "the WHERE clause does not refer to the target table's rows, so it matches all rows or none",
        "write a condition on the target table's own columns",
    ),
    "sql-join-without-restriction": (
        "DELETE ... USING / UPDATE ... FROM whose WHERE only joins the tables matches every joined row",
        "add a condition that restricts the rows (e.g. on a key or a date), not only the join",
    ),
    "sql-merge-delete": (
        "MERGE ... THEN DELETE with an always-true join, or WHEN NOT MATCHED BY SOURCE THEN DELETE, "
        "deletes rows wholesale",
        "use DELETE ... WHERE with an explicit condition",
    ),
    "sql-dynamic": (
        "dynamic SQL (DO blocks, EXECUTE, functions in languages the guard cannot read) cannot be verified "
        "before it runs",
        "write the statements out as plain SQL so the guard can read them",
    ),
    "sql-copy-program": (
        "COPY ... PROGRAM runs a shell command on the database server",
        "COPY ... TO STDOUT / FROM STDIN and handle files on the client side",
    ),
    # --- commands --------------------------------------------------------------------------
    "cmd-unparseable": (
        "the command line does not parse as shell, so it cannot be verified",
        "fix the quoting; the guard only lets through command lines it can read completely",
    ),
    "cmd-dynamic": (
        "the program to run is computed at run time ($VAR, $(...)), so the guard cannot know what runs",
        "write the program name literally",
    ),
    "cmd-compose-down-volumes": (
        "docker compose down -v/--volumes deletes the named volumes, postgres_data included",
        "docker compose down (without -v): the data stays in the postgres_data volume",
    ),
    "cmd-compose-rm-volumes": (
        "docker compose rm -v deletes the containers' volumes",
        "docker compose rm without -v",
    ),
    "cmd-docker-volume-rm": (
        "docker volume rm deletes a volume and the database files in it",
        "leave volumes alone; to move data, back up and restore (playbooks/restore.yml)",
    ),
    "cmd-docker-volume-prune": (
        "docker volume prune deletes every volume not used by a running container, postgres_data "
        "included whenever the stack is down",
        "never prune volumes on a database host; remove a known unused volume by break-glass only",
    ),
    "cmd-docker-system-prune-volumes": (
        "docker system prune --volumes also deletes unused volumes",
        "docker system prune (or -a) without --volumes",
    ),
    "cmd-docker-rm-volumes": (
        "docker rm -v deletes the container's volumes with it",
        "docker rm without -v",
    ),
    "cmd-stop-volume-pin": (
        "the container holds the database volume (a datasafe volume pin, datasafe-pin-*): once it is "
        "stopped or removed, any Docker client can delete the volume",
        "leave the pin running; to retire a volume for good, remove its pin with playbooks/pin.yml "
        "(datasafe_pin_state=absent) after a verified backup",
    ),
    "cmd-setup-script": (
        "setup-development.sh / setup-production.sh clear all data",
        "never run them on a database with data; use the migration tooling instead",
    ),
    "cmd-clean-seed": (
        "clean-seed.sql clears all data",
        "never run it against production; seed only throwaway databases",
    ),
    "cmd-dropdb": (
        "dropdb destroys a whole database",
        "never in production; restore beside the database and swap names instead",
    ),
    "cmd-rm-volume-path": (
        "deleting files under Docker's volume directory or the PostgreSQL data directory destroys the database",
        "leave the data directory alone; stop the stack with docker compose down (without -v)",
    ),
    "cmd-wrapped-unverifiable": (
        "the command runs a command line that the guard cannot read (e.g. given through a variable)",
        "write the wrapped command literally",
    ),
}


class Finding:
    """One reason to refuse: a rule id, the offending statement or command, why, and what instead."""

    __slots__ = ("rule", "statement", "reason", "instead")

    def __init__(self, rule, statement, reason=None, instead=None):
        default_reason, default_instead = RULES.get(rule, (None, None))
        self.rule = rule
        self.statement = (statement or "").strip()
        self.reason = reason or default_reason or rule
        self.instead = instead or default_instead or "do not run it; ask for a review"

    def to_dict(self):
        return {"rule": self.rule, "statement": self.statement, "reason": self.reason, "instead": self.instead}

    def line(self):
        """One line for people: rule id, reason, the statement (shortened)."""
        stmt = " ".join(self.statement.split())
        if len(stmt) > 120:
            stmt = stmt[:117] + "..."
        return "%s: %s [%s]" % (self.rule, self.reason, stmt)

    def __repr__(self):
        return "Finding(%r, %r)" % (self.rule, self.statement)

    def __eq__(self, other):
        return isinstance(other, Finding) and self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash((self.rule, self.statement))


def summary(findings):
    return "; ".join(f.line() for f in findings)


def dedupe(findings):
    seen, out = set(), []
    for f in findings:
        key = (f.rule, f.statement)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


class DenyRuleError(ValueError):
    """A project deny rule is malformed."""


class DenyRule:
    """A project's own deny rule: a regex (SQL or command line) or an argv prefix (commands).

    ``{"id": "custom-no-audit-delete", "applies_to": "sql", "regex": "(?i)delete\\s+from\\s+audit",
    "reason": "...", "instead": "..."}`` or ``{"id": "custom-no-reboot", "argv_prefix": ["reboot"]}``.
    Regexes are searched (not anchored) in each statement / each simple command as written and
    unwrapped; argv prefixes are compared word by word after unwrapping sudo, env, bash -c, ...
    """

    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise DenyRuleError("a deny rule must be a mapping, got %r" % (spec,))
        unknown = set(spec) - {"id", "applies_to", "regex", "argv_prefix", "reason", "instead"}
        if unknown:
            raise DenyRuleError("deny rule %r: unknown keys %s" % (spec.get("id"), ", ".join(sorted(unknown))))
        self.id = spec.get("id")
        if not isinstance(self.id, str) or not re.match(r"^[a-z0-9][a-z0-9-]*$", self.id):
            raise DenyRuleError("deny rule id must be lower-case letters, digits and dashes: %r" % (self.id,))
        if self.id in RULES:
            # Built-in rules cannot be redefined: that would be a way to weaken them.
            raise DenyRuleError("deny rule id %r is a built-in rule id; choose another" % self.id)
        self.applies_to = spec.get("applies_to", "cmd")
        if self.applies_to not in ("cmd", "sql"):
            raise DenyRuleError("deny rule %s: applies_to must be 'cmd' or 'sql'" % self.id)
        has_regex, has_prefix = spec.get("regex") is not None, spec.get("argv_prefix") is not None
        if has_regex == has_prefix:
            raise DenyRuleError("deny rule %s: give exactly one of regex, argv_prefix" % self.id)
        if has_prefix and self.applies_to != "cmd":
            raise DenyRuleError("deny rule %s: argv_prefix only applies to commands" % self.id)
        self.regex = None
        if has_regex:
            try:
                self.regex = re.compile(spec["regex"])
            except (re.error, TypeError) as exc:
                raise DenyRuleError("deny rule %s: bad regex: %s" % (self.id, exc)) from exc
        self.argv_prefix = None
        if has_prefix:
            prefix = spec["argv_prefix"]
            if not isinstance(prefix, list) or not prefix or not all(isinstance(w, str) for w in prefix):
                raise DenyRuleError("deny rule %s: argv_prefix must be a non-empty list of strings" % self.id)
            self.argv_prefix = list(prefix)
        self.reason = spec.get("reason") or "refused by the project's deny rule %s" % self.id
        self.instead = spec.get("instead") or "see the project's deny rules in the inventory"

    def matches_text(self, text):
        return self.regex is not None and self.regex.search(text) is not None

    def matches_argv(self, argv):
        if self.argv_prefix is not None:
            return list(argv[: len(self.argv_prefix)]) == self.argv_prefix
        return self.matches_text(" ".join(argv))

    def finding(self, statement):
        return Finding(self.id, statement, self.reason, self.instead)


def compile_deny_rules(specs, applies_to=None):
    """Validate project deny rules; return those for ``applies_to`` ('cmd', 'sql' or None for all)."""
    rules = [DenyRule(s) for s in (specs or [])]
    ids = [r.id for r in rules]
    if len(ids) != len(set(ids)):
        raise DenyRuleError("deny rule ids must be unique: %s" % ", ".join(sorted(ids)))
    return [r for r in rules if applies_to is None or r.applies_to == applies_to]
