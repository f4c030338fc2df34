"""The command guard: refuse shell commands that destroy the database or its volume.

A command line is parsed with a real bash parser (bashlex), so lists (``&&``, ``;``), pipes,
subshells, ``$(...)``, backticks, ``if``/``for`` bodies and functions are all seen through.
Every simple command found is then judged as an argv: wrappers (sudo, env, nohup, timeout,
xargs, docker exec, compose exec, ...) are unwrapped by judging every suffix of their
arguments, and command-line wrappers (``bash -c``, ``sh -c``, ``eval``, ``ssh host '...'``,
``su -c``, ``watch``) have their string parsed again. psql's ``-c`` SQL, here-strings,
here-documents and ``echo ... |`` input are judged by the SQL guard.

``judge(line=...)`` or ``judge(argv=[...])`` -> ``[Finding]``; an empty list means allowed.
"""

import fnmatch
import os
import posixpath
import re
import shlex

from ansible.module_utils.datasafe import guard_sql
from ansible.module_utils.datasafe.guard import Finding, dedupe

try:
    import bashlex

    HAS_BASHLEX, BASHLEX_IMPORT_ERROR = True, None
except ImportError as _exc:  # the modules turn this into missing_required_lib (fail closed)
    HAS_BASHLEX, BASHLEX_IMPORT_ERROR = False, _exc

SETUP_SCRIPTS = ("setup-development.sh", "setup-production.sh")
CLEAN_SEED = "clean-seed.sql"
# Where database files live: Docker's volumes (root and rootless), PostgreSQL data directories.
PROTECTED_PATHS = (
    "/var/lib/docker",
    "/var/lib/docker/volumes",
    "~/.local/share/docker",
    "/var/lib/postgresql",
    "/var/lib/postgresql/data",
    "/var/lib/pgsql",
)

SHELLS = {"bash", "sh", "dash", "zsh", "ksh", "ash", "mksh", "busybox"}
# Programs that run the rest of their arguments as a command (options in between are skipped
# by judging every suffix, so unknown options cannot hide the wrapped command).
ARGV_WRAPPERS = {
    "sudo",
    "doas",
    "env",
    "nohup",
    "time",
    "timeout",
    "nice",
    "ionice",
    "stdbuf",
    "exec",
    "command",
    "builtin",
    "xargs",
    "setsid",
    "flock",
    "runuser",
    "chroot",
    "strace",
    "ltrace",
    "unbuffer",
    "systemd-run",
    "chpst",
    "taskset",
    "chrt",
    "numactl",
    "cgexec",
    "firejail",
    "caffeinate",
    "then",
    "do",
    "else",
    "parallel",
}
# Programs that join their arguments into a command line run by a shell.
LINE_WRAPPERS = {"eval", "ssh", "watch"}
DOCKER = {"docker", "podman", "nerdctl"}
COMPOSE = {"docker-compose", "podman-compose"}
DELETERS = {"rm", "shred", "unlink", "rmdir", "truncate", "mv", "srm", "wipe"}
# The volume pins (module_utils/datasafe/pin.py): by name, or by their label in a $(docker ps ...) operand.
PIN_NAME = "datasafe-pin-*"
PIN_MARKS = ("datasafe-pin", "io.datasafe.pin")
# docker container subcommands that end a running container, and their options taking a value
_CONTAINER_ENDERS = {"stop": {"-t", "--time", "-s", "--signal"}, "kill": {"-s", "--signal"}, "rm": set()}

_GLOB = re.compile(r"[*?\[]")
_MAX_DEPTH = 8

# docker's and compose's options that take a value (so their value is not mistaken for a subcommand)
_DOCKER_GLOBAL_VALUE = {
    "-H",
    "--host",
    "-c",
    "--context",
    "--config",
    "-l",
    "--log-level",
    "--tlscacert",
    "--tlscert",
    "--tlskey",
}
_COMPOSE_GLOBAL_VALUE = {
    "-f",
    "--file",
    "-p",
    "--project-name",
    "--env-file",
    "--profile",
    "--project-directory",
    "--ansi",
    "--progress",
    "--parallel",
    "-c",
    "--context",
    "-H",
    "--host",
    "--log-level",
    "--tlscacert",
    "--tlscert",
    "--tlskey",
}
_PSQL_SHORT_VALUE = set("cdfhLopPRTUvF")
_PSQL_LONG_VALUE = {
    "command",
    "dbname",
    "file",
    "host",
    "log-file",
    "output",
    "port",
    "pset",
    "record-separator",
    "table-attr",
    "username",
    "variable",
    "set",
    "field-separator",
}
_PG_RESTORE_SHORT_VALUE = set("dfFIjLnNPStTUhpW")


class Word(str):
    """A shell word after quote removal; ``dynamic`` if it contains an expansion ($x, $(..), `..`)."""

    dynamic = False

    @classmethod
    def make(cls, text, dynamic=False):
        w = cls(text)
        w.dynamic = dynamic
        return w


class Context:
    """What a simple command sees besides its argv: its stdin, the working directory, settings."""

    def __init__(self, deny_rules=(), read_files=False, protected=PROTECTED_PATHS, read_file=None):
        self.read_file = read_file or read_local_file
        self.deny_rules = [r for r in deny_rules if r.applies_to == "cmd"]
        self.sql_rules = [r for r in deny_rules if r.applies_to == "sql"]
        self.read_files = read_files
        self.protected = [posixpath.normpath(p) for p in protected]
        self.cwd = None
        self.stdin = None  # ("sql", text) | ("files", [paths]) | ("line", text) | None
        self.cache = set()


def available():
    return HAS_BASHLEX and guard_sql.available()


def read_local_file(path):
    """A SQL file's text where the guard runs (``~`` expanded), or None when there is no such file."""
    full = os.path.expanduser(path)
    if not os.path.isfile(full):
        return None
    with open(full, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def judge_subject(subject, deny_rules, read_file=None):
    """Findings for safe_command's ``subject`` (:func:`verdict.command_subject` of its options), on the
    host (the module) or on the controller (``guard_action``, which reads SQL files on the host)."""
    return judge(
        line=subject["cmd"],
        argv=subject["argv"],
        deny_rules=deny_rules,
        read_files=subject["read_sql_files"],
        protected_paths=subject["protected_paths"],
        stdin=subject["stdin"],
        read_file=read_file,
    )


def judge(line=None, argv=None, deny_rules=(), read_files=False, protected_paths=(), stdin=None, read_file=None):
    """Findings for a command line (``line``) or an argv list; empty means allowed.

    ``deny_rules``: compiled project rules (``guard.compile_deny_rules``); SQL ones apply to the
    SQL given to psql. ``read_files``: also read SQL files given to psql (``-f``, ``<``) and judge their content,
    when they exist where the guard runs. ``protected_paths``: extra paths (e.g. the actual
    mountpoint of ``postgres_data``) that must never be deleted. ``stdin``: data the command
    will read on its standard input (judged as SQL by psql, as a command line by a shell).
    ``read_file(path)``: how a SQL file is read, its text or None when it does not exist
    (default :func:`read_local_file`; the action plugin reads it on the managed host).
    """
    if not available():
        raise RuntimeError(
            "bashlex and pglast are required for the command guard: %s"
            % (BASHLEX_IMPORT_ERROR or guard_sql.PGLAST_IMPORT_ERROR)
        )
    ctx = Context(deny_rules, read_files, PROTECTED_PATHS + tuple(protected_paths), read_file)
    if stdin is not None:
        ctx.stdin = ("text", str(stdin))
    if (line is None) == (argv is None):
        raise ValueError("give exactly one of line, argv")
    if argv is not None:
        words = [Word.make(str(a)) for a in argv]
        text = shlex.join(words)
        findings = _judge_argv(words, text, ctx, 0)
    else:
        text = line
        findings = _judge_line(line, ctx, 0)
    for rule in ctx.deny_rules:
        if rule.matches_text(text):
            findings.append(rule.finding(text))
    return dedupe(findings)


# --------------------------------------------------------------------------------------------
# Shell parsing
# --------------------------------------------------------------------------------------------

_QUOTED_HEREDOC = re.compile(r"<<(-?)\s*(['\"])([A-Za-z_][A-Za-z0-9_]*)\2")
_TIME_KEYWORD = re.compile(r"(^|[;&|(){}\n]|\b(?:then|do|else|elif|if|while|until)\s|!\s)(\s*)time(?=\s)")


def _prepare(line):
    # bashlex 0.18 rejects quoted here-doc delimiters and the `time` keyword; neither changes
    # which commands run (a quoted delimiter only turns off expansion in the body, which the
    # guard reads literally anyway), so rewrite them into forms it parses.
    line = _QUOTED_HEREDOC.sub(r"<<\1\3", line)
    return _TIME_KEYWORD.sub(r"\1\2\\time", line)


def _judge_line(line, ctx, depth):
    if depth > _MAX_DEPTH:
        return [Finding("cmd-wrapped-unverifiable", line, "commands nested too deep to verify")]
    if not line.strip():
        return []
    try:
        trees = bashlex.parse(_prepare(str(line)))
    except Exception as exc:  # bashlex raises ParsingError, NotImplementedError, MatchedPairError, ...
        return [Finding("cmd-unparseable", line, "the command line does not parse as shell: %s" % exc)]
    findings = []
    for tree in trees:
        findings.extend(_visit(tree, line, ctx, depth))
    return findings


def _visit(node, line, ctx, depth):
    kind = node.kind
    if kind == "command":
        return _simple_command(node, line, ctx, depth)
    if kind == "pipeline":
        return _pipeline(node, line, ctx, depth)
    if kind == "list":
        findings = []
        for part in node.parts:
            findings.extend(_visit(part, line, ctx, depth))
        return findings
    findings = []
    saved_cwd = ctx.cwd
    for child in _children(node):
        findings.extend(_visit(child, line, ctx, depth))
    if kind == "compound" and node.list and getattr(node.list[0], "word", "") == "(":
        ctx.cwd = saved_cwd  # a subshell's cd does not leak out
    return findings


def _children(node):
    for attr in ("parts", "list"):
        for child in getattr(node, attr, None) or ():
            yield child
    for attr in ("command", "output"):
        child = getattr(node, attr, None)
        if hasattr(child, "kind"):
            yield child


def _pipeline(node, line, ctx, depth):
    findings, feed = [], None
    for part in node.parts:
        if part.kind == "pipe":
            continue
        saved = ctx.stdin
        if feed is not None:
            ctx.stdin = feed
        findings.extend(_visit(part, line, ctx, depth))
        ctx.stdin = saved
        feed = _stdin_from(part)
    return findings


def _stdin_from(node):
    """What a pipeline stage feeds the next one, as far as it can be read: echo/printf text, cat'd files."""
    if node.kind != "command":
        return None
    words = [w for w in _words(node)]
    if not words:
        return None
    name = posixpath.basename(words[0])
    args = [w for w in words[1:] if not (w.startswith("-") and len(w) > 1)]
    if name in ("echo", "printf"):
        return ("text", " ".join(args).replace("\\n", "\n"))
    if name in ("cat", "zcat", "gunzip", "gzip", "xzcat", "bzcat", "zstdcat", "tee", "pv"):
        return ("files", args)
    return None


def _words(node):
    out = []
    for part in node.parts:
        if part.kind == "word":
            dynamic = any(
                p.kind in ("parameter", "commandsubstitution", "processsubstitution")
                for p in getattr(part, "parts", ()) or ()
            )
            out.append(Word.make(part.word, dynamic))
    return out


def _nested_commands(node):
    """Command and process substitutions anywhere inside a node's words, assignments, redirects."""
    stack = list(getattr(node, "parts", ()) or ())
    while stack:
        n = stack.pop()
        if n.kind in ("commandsubstitution", "processsubstitution"):
            yield n.command
            continue
        for child in _children(n):
            stack.append(child)
        for attr in ("heredoc",):
            child = getattr(n, attr, None)
            if hasattr(child, "kind"):
                stack.append(child)


def _simple_command(node, line, ctx, depth):
    findings = []
    for inner in _nested_commands(node):
        saved = ctx.stdin
        ctx.stdin = None
        findings.extend(_visit(inner, line, ctx, depth + 1))
        ctx.stdin = saved
    words = _words(node)
    text = line[node.pos[0] : node.pos[1]] if node.pos[1] <= len(line) else " ".join(words)
    stdin = ctx.stdin
    for redirect in (p for p in node.parts if p.kind == "redirect"):
        if redirect.type == "<<<" and hasattr(redirect.output, "word"):
            stdin = ("text", redirect.output.word)
        elif redirect.type in ("<<", "<<-") and getattr(redirect, "heredoc", None) is not None:
            body = redirect.heredoc.value
            stdin = ("text", body.rsplit("\n", 1)[0] if "\n" in body else "")
        elif redirect.type == "<" and hasattr(redirect.output, "word"):
            stdin = ("files", [redirect.output.word])
        elif redirect.type in (">", ">|") and hasattr(redirect.output, "word"):
            # `> file` truncates it: same as deleting a database file
            findings.extend(_path_findings(Word.make(redirect.output.word), text, ctx))
    if not words:
        return findings
    if posixpath.basename(words[0]) in ("cd", "pushd") and len(words) >= 2 and not words[1].dynamic:
        target = words[1]
        if target.startswith("/"):
            ctx.cwd = posixpath.normpath(target)
        elif ctx.cwd:
            ctx.cwd = posixpath.normpath(posixpath.join(ctx.cwd, target))
        return findings
    saved = ctx.stdin
    ctx.stdin = stdin
    findings.extend(_judge_argv(words, text, ctx, depth))
    ctx.stdin = saved
    return findings


# --------------------------------------------------------------------------------------------
# argv judgement
# --------------------------------------------------------------------------------------------


def _judge_argv(words, text, ctx, depth):
    key = (tuple(words), ctx.stdin and (ctx.stdin[0], str(ctx.stdin[1])), ctx.cwd, depth > _MAX_DEPTH)
    if key in ctx.cache:
        return []
    ctx.cache.add(key)
    if depth > _MAX_DEPTH:
        return [Finding("cmd-wrapped-unverifiable", text, "commands nested too deep to verify")]
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        words = words[1:]  # VAR=value prefixes (also after env)
    if not words:
        return []
    findings = [rule.finding(text) for rule in ctx.deny_rules if rule.matches_argv(words)]
    prog = words[0]
    if _dynamic_program(prog):
        return findings + [Finding("cmd-dynamic", text)]
    name = posixpath.basename(prog.lstrip("\\"))
    args = words[1:]

    if _is_setup_script(prog):
        findings.append(Finding("cmd-setup-script", text))
    if name in ARGV_WRAPPERS:
        findings.extend(_suffixes(args, text, ctx, depth))
    elif name in LINE_WRAPPERS:
        findings.extend(_line_suffixes(args, text, ctx, depth))
    elif name == "su":
        findings.extend(_su(args, text, ctx, depth))
    elif name in ("alias", "trap"):
        # alias d='docker volume prune'; trap 'docker compose down -v' EXIT: the strings run later
        for a in args:
            value = a.split("=", 1)[1] if name == "alias" and "=" in a else a if name == "trap" else None
            if value:
                findings.extend(_judge_line(value, ctx, depth + 1))
    elif name in SHELLS or name in ("source", "."):
        findings.extend(_shell(name, args, text, ctx, depth))
    elif name in DOCKER:
        findings.extend(_docker(args, text, ctx, depth))
    elif name in COMPOSE:
        findings.extend(_compose(args, text, ctx, depth))
    elif name == "psql":
        findings.extend(_psql(args, text, ctx))
    elif name == "dropdb":
        findings.append(Finding("cmd-dropdb", text))
    elif name == "pg_restore":
        findings.extend(_pg_restore(args, text))
    elif name in DELETERS:
        findings.extend(_deleter(name, args, text, ctx))
    elif name == "find":
        findings.extend(_find(args, text, ctx, depth))
    elif name == "dd":
        for a in args:
            if a.startswith("of="):
                findings.extend(_path_findings(Word.make(a[3:], a.dynamic), text, ctx))
    return findings


def _dynamic_program(prog):
    """The program name is computed at run time: ``$CMD``, ``$(which x)``, ``${X}/bin/$Y``."""
    if not prog.dynamic and "$" not in prog and "`" not in prog:
        return False
    return any(ch in posixpath.basename(prog) for ch in "$`") or prog.startswith(("$(", "`"))


def _matches_name(word, names):
    base = posixpath.basename(word)
    if _GLOB.search(base):
        return any(fnmatch.fnmatchcase(n, base) for n in names)
    return base in names


def _is_setup_script(word):
    return _matches_name(word, SETUP_SCRIPTS)


def _suffixes(args, text, ctx, depth):
    findings = []
    for i in range(len(args)):
        findings.extend(_judge_argv(args[i:], text, ctx, depth + 1))
    return findings


def _line_suffixes(args, text, ctx, depth):
    findings = []
    for i in range(len(args)):
        findings.extend(_judge_line(" ".join(args[i:]), ctx, depth + 1))
    return findings


def _su(args, text, ctx, depth):
    findings = []
    for i, a in enumerate(args):
        value = None
        if a in ("-c", "--command") and i + 1 < len(args):
            value = args[i + 1]
        elif a.startswith("--command="):
            value = a.split("=", 1)[1]
        if value is not None:
            findings.extend(_judge_line(value, ctx, depth + 1))
    return findings


def _shell(name, args, text, ctx, depth):
    """bash/sh/...: ``-c STRING`` is a command line; otherwise the first operand is a script."""
    findings = []
    if name == "busybox":
        if args and args[0] in SHELLS:
            args = args[1:]
        else:
            return _suffixes(args, text, ctx, depth)
    if name in ("source", "."):
        if args and _is_setup_script(args[0]):
            findings.append(Finding("cmd-setup-script", text))
        return findings
    i, command_string = 0, False
    while i < len(args):
        a = args[i]
        if a == "--":
            i += 1
            break
        if a in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            i += 2
            continue
        if a.startswith("--"):
            i += 1
            continue
        if a.startswith(("-", "+")) and len(a) > 1:
            command_string = command_string or "c" in a[1:]
            i += 1
            continue
        break
    operands = args[i:]
    if command_string:
        if not operands:
            return findings
        if operands[0].dynamic:
            findings.append(Finding("cmd-wrapped-unverifiable", text))
        findings.extend(_judge_line(operands[0], ctx, depth + 1))
        return findings
    if operands:
        if _is_setup_script(operands[0]):
            findings.append(Finding("cmd-setup-script", text))
        return findings
    # no operand: the shell reads its commands from stdin
    if ctx.stdin and ctx.stdin[0] == "text":
        findings.extend(_judge_line(ctx.stdin[1], ctx, depth + 1))
    elif ctx.stdin and ctx.stdin[0] == "files":
        if any(_is_setup_script(f) for f in ctx.stdin[1]):
            findings.append(Finding("cmd-setup-script", text))
    return findings


# --- docker ---------------------------------------------------------------------------------


def _skip_options(args, value_opts):
    """Index of the first operand, skipping options (and the values of ``value_opts``)."""
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            return i + 1
        if not a.startswith("-") or a == "-":
            return i
        if "=" not in a and a in value_opts:
            i += 2
            continue
        i += 1
    return i


def _has_volumes_flag(args, long_prefix_ok=True):
    """``-v``/``--volumes`` in any position or form: combined short flags (``-fsv``),
    ``--volumes=true``, and (docker-compose v1, docopt) unambiguous prefixes like ``--vol``.
    ``--volumes=false`` is explicitly off and not counted."""
    for a in args:
        if a == "--":
            break
        if a.startswith("--"):
            flag, _, value = a[2:].partition("=")
            is_volumes = flag == "volumes" or (long_prefix_ok and len(flag) >= 1 and "volumes".startswith(flag))
            if is_volumes and value.lower() not in ("false", "0", "f"):
                return True
        elif a.startswith("-") and len(a) > 1 and "v" in a[1:]:
            return True
    return False


def _docker(args, text, ctx, depth):
    i = _skip_options(args, _DOCKER_GLOBAL_VALUE)
    if i >= len(args):
        return []
    sub, rest = args[i], args[i + 1 :]
    if sub == "compose":
        return _compose(rest, text, ctx, depth)
    if sub in ("container", "volume", "system", "image", "network"):
        j = _skip_options(rest, set())
        if j >= len(rest):
            return []
        group, sub, rest = sub, rest[j], rest[j + 1 :]
    else:
        group = "container"
    findings = []
    if group == "volume" and sub in ("rm", "remove"):
        findings.append(Finding("cmd-docker-volume-rm", text))
    elif group == "volume" and sub == "prune":
        findings.append(Finding("cmd-docker-volume-prune", text))
    elif (
        group == "system"
        and sub == "prune"
        and _has_volumes_flag(rest, long_prefix_ok=False)
        and any(a.startswith("--volumes") for a in rest)
    ):
        findings.append(Finding("cmd-docker-system-prune-volumes", text))
    elif group == "container" and sub in ("rm", "remove") and _has_volumes_flag(rest, long_prefix_ok=False):
        findings.append(Finding("cmd-docker-rm-volumes", text))
    if group == "container" and sub in ("stop", "kill", "rm", "remove"):
        findings.extend(_pin_enders("rm" if sub == "remove" else sub, rest, text))
    if group == "container" and sub in ("exec", "run", "create", "start"):
        findings.extend(_container_command(sub, rest, text, ctx, depth))
    return findings


def _pin_enders(sub, args, text):
    """``docker stop/kill/rm CONTAINER...``: refuse when a container is a volume pin, named
    literally (or by a glob it matches) or picked by a ``$(docker ps ...)`` that names its label,
    or when ``$(docker ps -q)`` without a filter picks every running container, the pin included
    (``rm`` only with ``-f``: a plain rm leaves running containers alone)."""
    value_opts = _CONTAINER_ENDERS[sub]
    force = sub != "rm" or any(
        a in ("--force", "--force=true") or (a.startswith("-") and not a.startswith("--") and "f" in a[1:])
        for a in args
    )
    i, operands = 0, []
    while i < len(args):
        a = args[i]
        if a.startswith("-") and len(a) > 1:
            i += 2 if ("=" not in a and a in value_opts) else 1
            continue
        operands.append(a)
        i += 1
    for op in operands:
        raw = str(op)
        if fnmatch.fnmatchcase(raw, PIN_NAME) or (_GLOB.search(raw) and fnmatch.fnmatchcase("datasafe-pin-x", raw)):
            return [Finding("cmd-stop-volume-pin", text)]
        if op.dynamic or "$" in raw or "`" in raw:
            if any(mark in raw for mark in PIN_MARKS):
                return [Finding("cmd-stop-volume-pin", text)]
            lists_all = re.search(r"\b(ps|container\s+ls|container\s+list)\b", raw) and not re.search(
                r"(\s--filter\b|\s-f\b|\s-[a-z]*f\b|--filter=)", raw
            )
            if lists_all and force:
                return [
                    Finding(
                        "cmd-stop-volume-pin",
                        text,
                        "it ends every running container, the volume pins (datasafe-pin-*) included; then any "
                        "Docker client can delete the database volume",
                        "stop the application with docker compose stop/down; leave the pins running",
                    )
                ]
    return []


def _mount_targets(args):
    """Container paths where named volumes are mounted (``-v name:/path``, ``--mount source=..``)."""
    targets = []
    for i, a in enumerate(args):
        value = None
        if a in ("-v", "--volume", "--mount") and i + 1 < len(args):
            value = args[i + 1]
        elif a.startswith(("--volume=", "--mount=")):
            value = a.split("=", 1)[1]
        elif a.startswith("-v") and len(a) > 2:
            value = a[2:]
        if not value:
            continue
        if "," in value and "=" in value:  # --mount type=volume,source=x,target=/y
            fields = dict(f.split("=", 1) for f in value.split(",") if "=" in f)
            dst = fields.get("target") or fields.get("destination") or fields.get("dst")
            if dst:
                targets.append(dst)
        else:
            parts = value.split(":")
            if len(parts) >= 2:
                targets.append(parts[1])
    return targets


def _container_command(sub, args, text, ctx, depth):
    """``docker exec/run ... CONTAINER|IMAGE CMD...``: judge the command inside, at every offset
    (unknown options cannot shift it out of view), with named-volume mounts protected too."""
    extra = _mount_targets(args) if sub in ("run", "create") else []
    saved = ctx.protected
    ctx.protected = saved + [posixpath.normpath(t) for t in extra if t.startswith("/")]
    try:
        return _suffixes(args, text, ctx, depth)
    finally:
        ctx.protected = saved


def _compose(args, text, ctx, depth):
    i = _skip_options(args, _COMPOSE_GLOBAL_VALUE)
    if i >= len(args):
        return []
    sub, rest = args[i], args[i + 1 :]
    if sub == "down" and _has_volumes_flag(rest):
        return [Finding("cmd-compose-down-volumes", text)]
    if sub == "rm" and _has_volumes_flag(rest):
        return [Finding("cmd-compose-rm-volumes", text)]
    if sub in ("exec", "run"):
        return _container_command(sub, rest, text, ctx, depth)
    return []


# --- PostgreSQL client programs -----------------------------------------------------------------


def _psql(args, text, ctx):
    """psql's options as getopt_long reads them: anywhere, combined (``-Xc``), attached (``-cSQL``)."""
    commands, files, i = [], [], 0
    # where the value of each option that names SQL goes (long and short spelling)
    into = {"command": commands, "c": commands, "file": files, "f": files}
    while i < len(args):
        a, option, value = args[i], None, ""
        if a == "--":
            break
        if a.startswith("--"):
            option, eq, value = a[2:].partition("=")
            takes_next = option in _PSQL_LONG_VALUE and not eq
        elif a.startswith("-") and len(a) > 1:
            # combined short options: the first that takes a value ends the word
            k = next((k for k, ch in enumerate(a[1:], start=1) if ch in _PSQL_SHORT_VALUE), None)
            if k is not None:
                option, value = a[k], a[k + 1 :]
                takes_next = not value
        if option is not None and takes_next:
            value = args[i + 1] if i + 1 < len(args) else ""
            i += 1
        if option in into:
            into[option].append(value)
        i += 1
    findings = []
    for sql in commands:
        findings.extend(_sql_findings(sql, text, ctx))
    for path in files:
        if path == "-":
            findings.extend(_stdin_sql(text, ctx))
        else:
            findings.extend(_sql_file(path, text, ctx))
    if not commands and not files:
        findings.extend(_stdin_sql(text, ctx))
    return findings


def _sql_findings(sql, text, ctx):
    return guard_sql.judge(sql, ctx.sql_rules)


def _stdin_sql(text, ctx):
    if not ctx.stdin:
        return []
    kind, value = ctx.stdin
    if kind == "text":
        return _sql_findings(value, text, ctx)
    findings = []
    for path in value:
        findings.extend(_sql_file(path, text, ctx))
    return findings


def _sql_file(path, text, ctx):
    if _matches_name(path, (CLEAN_SEED,)):
        return [Finding("cmd-clean-seed", text)]
    if ctx.read_files and not _GLOB.search(path) and "$" not in path and path.endswith(".sql"):
        content = ctx.read_file(path if path.startswith("/") or not ctx.cwd else posixpath.join(ctx.cwd, path))
        if content is not None:
            return _sql_findings(content, text, ctx)
    return []


def _pg_restore(args, text):
    """pg_restore --clean drops every object before recreating it; into a live database that is data loss."""
    target_db = any(a in ("-d", "--dbname") or a.startswith(("--dbname=", "-d")) for a in args)
    clean = any(
        a in ("--clean",) or (a.startswith("-") and not a.startswith("--") and "c" in _short_flags(a)) for a in args
    )
    if target_db and clean:
        return [
            Finding(
                "sql-drop-table",
                text,
                "pg_restore --clean drops every table before restoring it",
                "restore into a new database beside the current one (playbooks/restore.yml)",
            )
        ]
    return []


def _short_flags(a):
    flags = ""
    for ch in a[1:]:
        if ch in _PG_RESTORE_SHORT_VALUE:
            break
        flags += ch
    return flags


# --- deleting files -------------------------------------------------------------------------


def _deleter(name, args, text, ctx):
    operands, i = [], 0
    while i < len(args):
        a = args[i]
        if a == "--":
            operands.extend(args[i + 1 :])
            break
        if a.startswith("-") and len(a) > 1:
            if name == "truncate" and a in ("-s", "-r", "--size", "--reference"):
                i += 1
            if name == "mv" and a in ("-t", "--target-directory", "-S", "--suffix"):
                i += 1
        else:
            operands.append(a)
        i += 1
    if name == "mv" and len(operands) >= 2:
        operands = operands[:-1]  # moving data away deletes it from the volume; the destination is fine
    findings = []
    for path in operands:
        findings.extend(_path_findings(path, text, ctx))
    return findings


def _find(args, text, ctx, depth):
    start = []
    for a in args:
        if a.startswith(("-", "(", "!")):
            break
        start.append(a)
    deletes = "-delete" in args
    for k, a in enumerate(args):
        if a in ("-exec", "-execdir", "-ok", "-okdir") and k + 1 < len(args):
            deletes = deletes or posixpath.basename(args[k + 1]) in DELETERS
    findings = []
    if deletes:
        for path in start or [Word.make(".")]:
            findings.extend(_path_findings(path, text, ctx))
    return findings


def _path_findings(path, text, ctx):
    if _protected(path, ctx):
        return [Finding("cmd-rm-volume-path", text)]
    return []


def _protected(path, ctx):
    raw = str(path)
    if path.dynamic or "$" in raw:
        # Unknown at guard time; refuse only if it visibly names the data directory.
        return bool(re.search(r"PGDATA|docker|volumes|postgres", raw, re.I))
    if raw.startswith("~"):
        raw = "~" + raw[1:] if raw.startswith("~/") or raw == "~" else raw
    elif not raw.startswith("/"):
        if ctx.cwd:
            raw = posixpath.join(ctx.cwd, raw)
        else:
            rel = posixpath.normpath(raw).lstrip("./").strip("/")
            return "/" in rel and any(p.endswith("/" + rel) or ("/" + rel + "/") in (p + "/") for p in ctx.protected)
    glob_at = _GLOB.search(raw)
    literal = raw[: glob_at.start()] if glob_at else raw
    if glob_at:
        literal = posixpath.dirname(literal) or "/"
    norm = posixpath.normpath(literal) if literal not in ("", "/") else "/"
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    for p in ctx.protected:
        if norm == p or norm.startswith(p + "/") or p.startswith(norm.rstrip("/") + "/"):
            return True
    return False
