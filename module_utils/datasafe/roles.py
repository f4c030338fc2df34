"""The cluster's roles beside every backup, and their careful re-creation before a restore.

A database dump names roles (owners, GRANTs) but does not create them: loaded into a fresh
server under ``ON_ERROR_STOP`` it fails at the first ``OWNER TO`` of a role that is not there.
So every backup also saves ``pg_dumpall --roles-only`` (run inside the container, like the
dump) as ``<backup>.roles`` (mode 0600), verified and recorded in the manifest.

Before a restore loads a database, :func:`ensure` creates the roles that are **missing** on the
target server, with their attributes, settings, comments and the memberships *of* the roles it
created. It never alters a role that exists (no ALTER, no password change, no new membership of
an existing role); what it leaves alone is reported. Everything it does runs in one transaction.

Passwords: by default the file keeps the roles' password hashes (SCRAM verifiers, never clear
text), so the application's login works on a new machine; the file is 0600 and off-site copies
are encrypted when off-site encryption is on. With ``passwords=False`` pg_dumpall runs with
``--no-role-passwords`` and re-created login roles have no password until an operator sets one.
"""

import hashlib
import os
import re

from ansible.module_utils.datasafe import container

SUFFIX = ".roles"
TRAILER = "-- PostgreSQL database cluster dump complete"
# A role name as pg_dumpall writes it: a quoted identifier or a plain lower-case one.
_IDENT = r'(?:"(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)'
_CREATE = re.compile(r"^CREATE ROLE (%s)$" % _IDENT)
_ALTER_WITH = re.compile(r"^ALTER ROLE (%s) WITH " % _IDENT)
_ALTER_SET = re.compile(r"^ALTER ROLE (%s) (?:IN DATABASE (%s) )?(?:SET|RESET) " % (_IDENT, _IDENT))
_COMMENT = re.compile(r"^COMMENT ON ROLE (%s) IS " % _IDENT)
_LABEL = re.compile(r"^SECURITY LABEL FOR \S+ ON ROLE (%s) IS " % _IDENT)
_GRANT = re.compile(
    r"^GRANT (%s) TO (%s)((?: WITH [A-Z ]+?(?: OPTION| TRUE| FALSE))*)(?: GRANTED BY %s)?$" % ((_IDENT,) * 3)
)
_SET = re.compile(r"^SET [a-z_]+ = \S+$")
# psql meta-commands pg_dumpall writes around its output (15.14 and later).
_META = re.compile(r"^\\(?:un)?restrict \S+$")


class RolesError(Exception):
    """The roles file is unusable or re-creating roles failed; the message says what to do."""


def path_for(backup_path):
    return backup_path + SUFFIX


def dump_argv(cont, user, passwords=True):
    argv = ["pg_dumpall", "-U", user, "--roles-only"]
    if not passwords:
        argv.append("--no-role-passwords")
    return container.docker_exec(cont, argv)


def unquote(ident):
    if ident.startswith('"'):
        return ident[1:-1].replace('""', '"')
    return ident


def quote(name):
    return '"%s"' % name.replace('"', '""')


def statements(text):
    """Split SQL into statements (quotes, identifiers and ``--`` comments respected)."""
    out, buf, i, n = [], [], 0, len(text)
    at_line_start = True
    while i < n:
        c = text[i]
        if at_line_start and c == "\\":  # a psql meta-command line
            end = text.find("\n", i)
            end = n if end < 0 else end
            line = text[i:end].strip()
            if not _META.match(line):
                raise RolesError("unexpected psql command %r in the roles file" % line[:60])
            i = end
            continue
        at_line_start = False
        if c == "-" and text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if c in ("'", '"'):
            j = i + 1
            while True:
                j = text.find(c, j)
                if j < 0:
                    raise RolesError("unterminated %s in the roles file" % ("string" if c == "'" else "identifier"))
                if text.startswith(c * 2, j):
                    j += 2
                    continue
                break
            buf.append(text[i : j + 1])
            i = j + 1
            continue
        if c == ";":
            stmt = "".join(buf).strip()
            if stmt:
                out.append(stmt)
            buf = []
        elif c == "\n":
            at_line_start = True
            buf.append(c)
        else:
            buf.append(c)
        i += 1
    if "".join(buf).strip():
        raise RolesError("the roles file ends inside a statement: it is incomplete")
    return out


def parse(text):
    """The roles file as ``{"settings": [...], "roles": {name: [stmt...]}, "grants": [...]}``.

    Every statement must be one pg_dumpall writes for roles; anything else fails closed (a
    roles file is never a place for arbitrary SQL). Role order is the file's.
    """
    if TRAILER not in text[-400:]:
        raise RolesError("the roles file does not end with '%s': it is incomplete" % TRAILER)
    parsed = {"settings": [], "roles": {}, "grants": [], "order": []}
    for stmt in statements(text):
        one_line = " ".join(stmt.split()) if "'" not in stmt else stmt
        match = _CREATE.match(one_line)
        if match:
            name = unquote(match.group(1))
            parsed["roles"].setdefault(name, []).append(stmt)
            parsed["order"].append(name)
            continue
        match = _ALTER_WITH.match(stmt) or _ALTER_SET.match(stmt) or _COMMENT.match(stmt) or _LABEL.match(stmt)
        if match:
            name = unquote(match.group(1))
            if name not in parsed["roles"]:
                raise RolesError("the roles file alters role %s before creating it" % quote(name))
            in_db = match.group(2) if match.re is _ALTER_SET else None
            parsed["roles"][name].append((stmt, unquote(in_db)) if in_db else stmt)
            continue
        match = _GRANT.match(one_line)
        if match:
            group, member = unquote(match.group(1)), unquote(match.group(2))
            # The grantor need not exist on the new server; the restoring superuser grants.
            sql = "GRANT %s TO %s%s" % (quote(group), quote(member), match.group(3) or "")
            parsed["grants"].append({"group": group, "member": member, "sql": sql})
            continue
        if _SET.match(one_line):
            parsed["settings"].append(stmt)
            continue
        raise RolesError("unexpected statement in the roles file: %r" % stmt[:80])
    return parsed


def read(path, sha256=None, size=None):
    """The parsed roles file at ``path``, after its size and sha256 are checked against the manifest."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise RolesError("cannot read the roles file %s: %s" % (path, exc.strerror or exc)) from exc
    if size is not None and len(data) != size:
        raise RolesError(
            "roles file %s: size %d bytes, its manifest says %s: it changed after the backup was verified"
            % (path, len(data), size)
        )
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise RolesError("roles file %s does not match the sha256 in its manifest: it changed" % path)
    return parse(data.decode("utf-8"))


def verify_text(text):
    """Checks a freshly dumped roles file passes (raises RolesError); returns the role names."""
    parsed = parse(text)
    return list(parsed["order"])


def plan(parsed, existing, databases=()):
    """What :func:`ensure` would do on a server whose roles are ``existing`` (a set of names)."""
    create = [name for name in parsed["order"] if name not in existing]
    created = set(create)
    sql, skipped = [], []
    for name in create:
        for stmt in parsed["roles"][name]:
            if isinstance(stmt, tuple):
                stmt, database = stmt
                if database not in databases:
                    skipped.append("%s (database %s does not exist yet)" % (stmt, database))
                    continue
            sql.append(stmt)
    for grant in parsed["grants"]:
        if grant["member"] not in created:
            skipped.append("%s (role %s exists and is never altered)" % (grant["sql"], quote(grant["member"])))
        else:
            sql.append(grant["sql"])
    return {
        "create": create,
        "existing": [n for n in parsed["order"] if n in existing],
        "skipped": skipped,
        "sql": sql,
    }


_ROLES_SQL = "SELECT rolname FROM pg_catalog.pg_roles ORDER BY 1"
_DBS_SQL = "SELECT datname FROM pg_catalog.pg_database ORDER BY 1"


def ensure(run, cont, user, path, sha256=None, size=None, maintenance_db="postgres", check_mode=False):
    """Create the roles of the roles file at ``path`` that the server lacks, in one transaction.

    Returns ``{"created", "existing", "skipped"}``; never alters an existing role.
    """
    parsed = read(path, sha256, size)
    existing = {r[0] for r in container.query(run, cont, maintenance_db, user, _ROLES_SQL, stage="read pg_roles")}
    dbs = {r[0] for r in container.query(run, cont, maintenance_db, user, _DBS_SQL, stage="read pg_database")}
    decided = plan(parsed, existing, dbs)
    if decided["sql"] and not check_mode:
        script = "BEGIN;\n%s\n%s;\nCOMMIT;\n" % (
            "\n".join(s + ";" for s in parsed["settings"]),
            ";\n".join(decided["sql"]),
        )
        rc, _out, err = run(container.psql_argv(cont, maintenance_db, user), data=script)
        if rc != 0:
            raise RolesError(
                "creating the missing roles %s failed (exit %s; nothing was created): %s"
                % (", ".join(decided["create"]), rc, (err or "").strip()[-2000:])
            )
    return {"created": decided["create"], "existing": decided["existing"], "skipped": decided["skipped"]}


def manifest_block(path, data, passwords, names):
    """The manifest's ``roles`` entry for a roles file just written and verified."""
    return {
        "file": os.path.basename(path),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "passwords": "hashes" if passwords else "none",
        "roles": names,
        "verified": True,
        "checks": ["trailer '%s'" % TRAILER, "every statement is a role statement", "sha256 on disk"],
    }
