"""A bytecode cache for the Python code of Ansible's module payloads (AnsiballZ).

Every task that runs a module starts a Python interpreter that imports the module and its
module_utils (``ansible.module_utils.basic`` and the rest, datasafe's engine) from a zip file the
controller sends. Python cannot write bytecode beside sources in a zip, so each of those processes
compiles about 30,000 lines of source again: on ansible-core 2.19 that is 0.2-0.3 s of CPU per task,
half of what a task costs (measured: docs/measurements.md, "The test suite's time").

This module gives such imports what Python gives every installed package: compiled code kept
between runs. It claims only import paths inside an Ansible module payload (a file named
``ansible_<module>_payload.zip``) and reads the sources from that zip as zipimport would; the code
object of a source is cached under the key sha256(Python's bytecode magic, optimisation level,
the file's path inside the payload, the source itself), so a changed source is a new key and
nothing stale can run. Whatever it cannot use (a cache directory that is not the running user's
own, or that is writable by others; an unreadable or corrupt entry) it skips, and the import
compiles the source as it would have without it. Everything else falls through to zipimport.

The Makefile's venv step installs it into datasafe's virtualenv with a ``.pth`` file, so it is active
for modules run by that venv's Python (the local connection's interpreter in every inventory datasafe
writes). ``DATASAFE_ANSIBALLZ_CACHE=off`` turns it off; ``DATASAFE_ANSIBALLZ_CACHE=<dir>`` moves the
cache (default: ``.ansiballz-cache`` in the virtualenv). Remote hosts run modules on their own
Python and are unaffected.
"""

import hashlib
import importlib.util
import marshal
import os
import stat
import sys
import zipfile
import zipimport

try:
    from _imp import _fix_co_filename
except ImportError:  # pragma: no cover - CPython has it; elsewhere tracebacks name the first payload
    _fix_co_filename = None

MARK = "_payload.zip"  # ansible's AnsiballZ wrapper names its payload ansible_<module>_payload.zip
_archives = {}


def cache_dir():
    """The cache directory, or None when caching is off."""
    setting = os.environ.get("DATASAFE_ANSIBALLZ_CACHE", "")
    if setting.lower() in ("off", "0", "no", "false"):
        return None
    return setting or os.path.join(sys.prefix, ".ansiballz-cache")


def usable(directory):
    """Create ``directory`` (mode 0700) if missing; True only if it belongs to this user and no
    one else can write to it (cached code is run, so nobody else may be able to plant it)."""
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        info = os.lstat(directory)
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def split(path):
    """(payload zip, path inside it) of an import path inside a module payload; ImportError otherwise."""
    end = path.find(MARK)
    if end < 0:
        raise ImportError("not an Ansible module payload: %s" % path)
    end += len(MARK)
    return path[:end], path[end:].strip("/")


def cache_key(inner, source):
    digest = hashlib.sha256(importlib.util.MAGIC_NUMBER)
    digest.update(b"%d\0%s\0" % (sys.flags.optimize, inner.encode("utf-8", "surrogateescape")))
    digest.update(source)
    return digest.hexdigest()


class PayloadLoader:
    """Loads one module of a payload zip: its source from the zip, its code from the cache."""

    def __init__(self, archive, zipped, inner, is_package):
        self.archive, self.zipped, self.inner, self.package = archive, zipped, inner, is_package
        self.path = archive + "/" + inner

    def get_filename(self, fullname=None):
        return self.path

    def is_package(self, fullname=None):
        return self.package

    def get_data(self, path):
        archive, inner = split(path)
        if archive != self.archive:
            raise OSError("%s is not in %s" % (path, self.archive))
        try:
            return self.zipped.read(inner)
        except KeyError as error:
            raise OSError("%s is not in %s" % (inner, archive)) from error

    def get_source(self, fullname=None):
        return importlib.util.decode_source(self.zipped.read(self.inner))

    def get_code(self, fullname=None):
        source = self.zipped.read(self.inner)
        directory = cache_dir()
        entry = os.path.join(directory, cache_key(self.inner, source) + ".code") if directory else None
        if entry and os.path.exists(entry):
            try:
                with open(entry, "rb") as handle:
                    code = marshal.loads(handle.read())  # noqa: S302  (this user's own 0700 cache, checked above)
                if _fix_co_filename is not None:
                    _fix_co_filename(code, self.path)  # tracebacks name this run's payload, as importlib does
                return code
            except (OSError, ValueError, EOFError, TypeError):
                pass  # unreadable or corrupt: compiled below and written again
        code = compile(source, self.path, "exec", dont_inherit=True)
        if entry and usable(directory):
            partial = "%s.%d.partial" % (entry, os.getpid())
            try:
                with open(partial, "wb") as handle:
                    handle.write(marshal.dumps(code))
                os.replace(partial, entry)  # whole or not at all, whoever writes the same key at once
            except OSError:
                try:
                    os.unlink(partial)
                except OSError:
                    pass
        return code

    def create_module(self, spec):
        return None  # the default module object

    def exec_module(self, module):
        exec(self.get_code(module.__name__), module.__dict__)  # noqa: S102  (the module's own code, as importlib runs it)


class PayloadFinder:
    """The path-entry finder for a path inside a module payload (``sys.path_hooks``)."""

    def __init__(self, path):
        self.archive, self.prefix = split(path)
        if cache_dir() is None or not usable(cache_dir()):
            raise ImportError("the cache is off or not this user's own: zipimport handles %s" % path)
        zipped = _archives.get(self.archive)
        if zipped is None:
            try:
                zipped = zipfile.ZipFile(self.archive)
            except (OSError, zipfile.BadZipFile) as error:
                raise ImportError("cannot read %s: %s" % (self.archive, error)) from error
            _archives[self.archive] = zipped
        self.zipped, self.names, self.entry = zipped, set(zipped.namelist()), path

    def find_spec(self, fullname, target=None):
        base = "/".join(filter(None, (self.prefix, fullname.rpartition(".")[2])))
        for inner, is_package in ((base + "/__init__.py", True), (base + ".py", False)):
            if inner in self.names:
                loader = PayloadLoader(self.archive, self.zipped, inner, is_package)
                locations = [self.archive + "/" + base] if is_package else None
                return importlib.util.spec_from_file_location(
                    fullname, loader.path, loader=loader, submodule_search_locations=locations
                )
        # anything else in the zip (bytecode, namespace packages) is zipimport's, as without this cache
        return zipimport.zipimporter(self.entry).find_spec(fullname, target)

    def invalidate_caches(self):
        pass


def install():
    """Put the payload finder before zipimport's hook (once)."""
    if PayloadFinder not in sys.path_hooks:
        sys.path_hooks.insert(0, PayloadFinder)
