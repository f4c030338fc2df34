"""Load bashlex's parser tables from a cache instead of computing them at every import.

bashlex (the command guard's bash parser) ships its own copy of PLY that never reads the
``parsetab`` it ships: every ``import bashlex`` computes the LALR tables of the bash grammar
again, about a quarter to half a second. A one-off ``datasafe-guard cmd`` can afford that; the
agent hook, which runs before every command an agent types, cannot. :func:`install` (called
before bashlex is imported) makes bashlex's table builder take the action and goto tables from
a JSON file computed once by bashlex itself, keyed by the sha256 of bashlex's grammar and
table-builder sources and the Python version, so a different bashlex never uses stale tables.
The grammar itself (productions and their callables) is still built from bashlex's source at
every import; only the derived tables are cached. JSON, not pickle: loading the cache cannot
run code. Any problem (no cache directory, unreadable or foreign file) falls back to computing
the tables as bashlex always does.
"""

import hashlib
import importlib
import importlib.util
import json
import os
import sys
import tempfile


def default_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "datasafe")


def _key(package_dir):
    digest = hashlib.sha256()
    for name in ("parser.py", "yacc.py"):
        with open(os.path.join(package_dir, name), "rb") as handle:
            digest.update(handle.read())
    digest.update(("%d.%d" % sys.version_info[:2]).encode())
    return digest.hexdigest()[:32]


def _decode(table):
    return {int(state): dict(entries) for state, entries in table.items()}


def install(cache_dir=None):
    """Patch bashlex's table builder (before bashlex is imported). Returns the cache file, or None."""
    if "bashlex.parser" in sys.modules:
        return None  # too late: the tables are built already
    spec = importlib.util.find_spec("bashlex")
    if spec is None or not spec.submodule_search_locations:
        return None
    package_dir = list(spec.submodule_search_locations)[0]
    try:
        path = os.path.join(cache_dir or default_dir(), "bashlex-lalr-%s.json" % _key(package_dir))
    except OSError:
        return None
    # Load bashlex.yacc without running bashlex/__init__.py (which imports the parser and
    # builds the tables): a bare package module stands in while yacc.py is imported.
    placeholder = importlib.util.module_from_spec(spec)
    sys.modules["bashlex"] = placeholder
    try:
        yacc = importlib.import_module("bashlex.yacc")
    finally:
        if sys.modules.get("bashlex") is placeholder:
            del sys.modules["bashlex"]
    original = yacc.LRTable

    class CachedLRTable(original):
        def __init__(self, grammar, log=None):
            try:
                with open(path, encoding="utf-8") as handle:
                    data = json.load(handle)
                self.grammar, self.log = grammar, log
                self.lr_action, self.lr_goto = _decode(data["action"]), _decode(data["goto"])
                self.lr_productions = grammar.Productions
                self.sr_conflicts, self.rr_conflicts, self.conflicts = [], [], []
                self.sr_conflict = self.rr_conflict = 0
                if len(self.lr_productions) != data["productions"]:
                    raise ValueError("cached tables belong to another grammar")
                return
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                pass
            original.__init__(self, grammar, log)
            _store(path, self)

    yacc.LRTable = CachedLRTable
    return path


def _store(path, table):
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        data = {"action": table.lr_action, "goto": table.lr_goto, "productions": len(table.lr_productions)}
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".bashlex-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        pass  # no cache: the next run computes the tables again
