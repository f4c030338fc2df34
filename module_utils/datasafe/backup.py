"""The dump pipeline: a consistent, verified backup or a failure naming its stage.

1. A ``psql`` session held open inside the database container starts a REPEATABLE READ
   transaction and exports its snapshot (``pg_export_snapshot()``).
2. ``pg_dump --snapshot`` runs inside the same container (client and server versions always
   match) and its output is compressed there as gzip (so ``gunzip -c file | psql`` keeps
   working): by ``igzip`` (ISA-L) in a pipeline when the image has it, else by pg_dump's own
   ``-Z``; zstd, or gzip/pigz on the host, are options. Meanwhile the held session counts
   the critical tables in the same snapshot, so the counts describe exactly what was dumped.
3. The stream is written on the host under a temporary name (``.<name>.partial``), hashed
   as it arrives, fsynced, then verified from disk: sha256 again, a full decompression and
   the dump's completion trailer (``pg_restore`` reads every block of a custom archive).
4. Only then is it linked to its final name (never over an existing file) and its manifest
   written. Every process's exit status is checked; on any failure the temporary file is
   removed, nothing else is touched, and :class:`BackupError` names the stage.
"""

import errno
import functools
import hashlib
import json
import os
import queue
import select
import shutil
import subprocess
import tempfile
import threading
import time
import zlib

from ansible.module_utils.datasafe import container, files, manifest, roles, runner, times

try:  # python-isal (ISA-L's inflate, about twice zlib's speed), where the host's Python has it
    from isal import isal_zlib as _gzip_lib
except ImportError:  # the standard library's zlib: the same check, more CPU
    _gzip_lib = zlib

TRAILER = b"-- PostgreSQL database dump complete"
FORMATS = ("plain", "custom")
COMPRESSIONS = ("gzip", "zstd", "none")
LEVELS = {"gzip": (1, 9, 1), "zstd": (1, 19, 3), "none": (0, 0, 0)}  # min, max, default
CHUNK = 1 << 20
# igzip (ISA-L, Debian's package "isal") compresses gzip at levels 0-3 several times faster than
# zlib; used inside the container in place of pg_dump's own -Z when the image has it.
IGZIP_MAX_LEVEL = 3
CONTAINER_COMPRESSORS = ("auto", "pg_dump", "igzip")
# A plain dump may be split over three pg_dump sessions on the one exported snapshot, run at once:
# the schema and every table's data but the largest table's, that table's data, then the
# post-data section (indexes, constraints, triggers). The parts, appended in that order, are the
# pg_dump order a single dump has (measured in docs/measurements.md, "Round ten"). ``auto`` splits
# when the largest table and the rest each hold at least SPLIT_MIN_BYTES.
SPLIT_CHOICES = ("auto", "never", "always")
SPLIT_MIN_BYTES = 32 * 1024 * 1024
# The in-container pipeline's last line of stderr when its compressor, not pg_dump, failed.
_STAGE_MARK = "datasafe-failed-stage: "
LOCK_NAME = ".datasafe-backup.lock"  # a lock.ProcessLock, taken by backup_run
PARTIAL_SUFFIX = ".partial"


class BackupError(Exception):
    """A stage of the backup failed; ``stage`` names it for the operator."""

    def __init__(self, stage, message):
        self.stage, self.message = stage, message
        super().__init__("%s: %s" % (stage, message))


def extension(fmt, compression):
    if fmt == "custom":
        return ".dump"
    return {"gzip": ".sql.gz", "zstd": ".sql.zst", "none": ".sql"}[compression]


def backup_name(prefix, when, fmt, compression):
    """``<prefix>_YYYYMMDD_HHMMSS<ext>``: the protocol's names (``lms_backup_...sql.gz``)."""
    return "%s_%s%s" % (prefix, when.strftime("%Y%m%d_%H%M%S"), extension(fmt, compression))


def check_options(fmt, compression, level, compress_on):
    """Validate a combination of options; returns (level, compress_on) with defaults filled in."""
    if fmt not in FORMATS:
        raise ValueError("format must be one of %s, not %r" % (", ".join(FORMATS), fmt))
    if compression not in COMPRESSIONS:
        raise ValueError("compression must be one of %s, not %r" % (", ".join(COMPRESSIONS), compression))
    low, high, default = LEVELS[compression]
    if level is None:
        level = default
    if compression != "none" and not low <= level <= high:
        raise ValueError("compress_level %s is out of range for %s: use %d to %d" % (level, compression, low, high))
    if compress_on == "auto":
        compress_on = "host" if compression == "zstd" else "container"
    if fmt == "custom":
        if compression == "zstd":
            raise ValueError("pg_dump 15's custom format compresses with gzip only: use compression gzip or none")
        compress_on = "container"
    elif compression == "zstd" and compress_on == "container":
        raise ValueError("the PostgreSQL image has no zstd: use compress_on host (or auto) for zstd")
    return level, compress_on


def pg_dump_argv(
    cont, db, user, snapshot, fmt, compression, level, compress_on, lock_wait_timeout, nice=0, compressor=None, part=()
):
    """pg_dump inside the container; with ``nice`` it runs (and compresses) at that lower CPU priority.

    A process started by ``docker exec`` does not inherit the caller's niceness, so ``nice`` must
    be in the argv run inside the container (coreutils ``nice``, present in the PostgreSQL images).
    With ``compressor`` igzip (plain gzip compressed in the container) pg_dump writes plain SQL
    into ``igzip`` in a bash pipeline in the container; pg_dump's arguments are positional
    parameters, never interpolated, and a failing igzip names itself (see :func:`stream_to_file`).
    ``part``: pg_dump's options choosing one part of a split dump (:func:`split_parts`).
    """
    argv = ["pg_dump", "-U", user, "-d", db, "--snapshot=%s" % snapshot] + list(part)
    if lock_wait_timeout:
        argv.append("--lock-wait-timeout=%ds" % lock_wait_timeout)
    if fmt == "custom":
        argv += ["-Fc", "-Z", str(level if compression == "gzip" else 0)]
    elif compression == "gzip" and compress_on == "container":
        if compressor == "igzip":
            script = (
                'pg_dump "$@" | igzip -c -%d; s=("${PIPESTATUS[@]}"); '
                'if [ "${s[1]}" != 0 ]; then echo "%sigzip exited ${s[1]} (pg_dump ${s[0]})" >&2; exit "${s[1]}"; fi; '
                'exit "${s[0]}"' % (int(level), _STAGE_MARK)
            )
            argv = ["bash", "-c", script, "datasafe-backup"] + argv[1:]
        else:
            argv += ["-Z", str(level)]  # plain format + -Z writes a gzip file
    if nice:
        argv = ["nice", "-n", str(int(nice))] + argv
    return container.docker_exec(cont, argv)


def container_compressor(run, cont, fmt, compression, level, compress_on, choice="auto"):
    """What compresses in the container: ``igzip`` or ``pg_dump`` (its -Z); None when nothing does.

    ``auto`` takes igzip for a plain gzip dump at a level igzip has (1-3) when the image has it;
    ``igzip`` requires it (ValueError naming what to do when the image lacks it); ``pg_dump`` never
    looks. Which combinations ``igzip`` may be asked for is checked with the other options
    (:func:`backup_run.check_options`), before anything runs.
    """
    if compress_on != "container":
        return None
    igzip_fits = (fmt, compression) == ("plain", "gzip") and level <= IGZIP_MAX_LEVEL
    if choice == "pg_dump" or (choice == "auto" and not igzip_fits):
        return "pg_dump"
    rc, _, _ = run(container.docker_exec(cont, ["sh", "-c", "command -v igzip"]))
    if rc == 0:
        return "igzip"
    if choice == "igzip":
        raise ValueError(
            "container %s has no igzip: install Debian's package isal in the image, or use container_compressor auto"
            % cont
        )
    return "pg_dump"


def host_compressor_argv(compression, level, which=shutil.which):
    """The host-side compressor, or None when the stream is already final."""
    if compression == "zstd":
        return ["zstd", "-q", "-c", "-%d" % level]
    if compression == "gzip":
        return [which("pigz") and "pigz" or "gzip", "-c", "-%d" % level]
    return None


def dump_pattern(schema, table):
    """A pg_dump table pattern that matches exactly ``schema.table``: double-quoted names match
    literally (no wildcards, no case folding), a double quote in a name doubled."""
    return '"%s"."%s"' % (schema.replace('"', '""'), table.replace('"', '""'))


def split_parts(largest, choice="auto"):
    """The parts of the dump: a list of (what, pg_dump options), in the order they are appended.
    ``largest``: (schema, table, its bytes, every table's bytes) from
    :meth:`SnapshotSession.largest_table`, or None (no table). One part (no options) unless
    ``choice`` is ``always`` or (``auto``) the largest table and the rest each hold SPLIT_MIN_BYTES."""
    if choice not in SPLIT_CHOICES:
        raise ValueError("split must be one of %s, not %r" % (", ".join(SPLIT_CHOICES), choice))
    if largest is None or choice == "never":
        return [("the whole database", [])]
    schema, table, size, total = largest
    if choice == "auto" and min(size, total - size) < SPLIT_MIN_BYTES:
        return [("the whole database", [])]
    # A and B name the table by the same pattern: whatever it matched would be in B and not in A,
    # never in both or in neither.
    pattern = dump_pattern(schema, table)
    return [
        (
            "the schema and the data of every table but %s" % pattern,
            ["--section=pre-data", "--section=data", "--exclude-table-data=" + pattern],
        ),
        ("the data of %s" % pattern, ["--section=data", "--table=" + pattern]),
        ("the indexes, constraints and triggers", ["--section=post-data"]),
    ]


class SnapshotSession:
    """A psql session inside the container holding one REPEATABLE READ transaction open."""

    def __init__(self, cont, db, user, timeout=60):
        self.timeout = timeout
        argv = container.psql_argv(cont, db, user, extra=["-A", "-t", "-F", "|"])
        self._err = tempfile.TemporaryFile()
        self.proc = runner.spawn(argv, stdin=runner.PIPE, stdout=runner.PIPE, stderr=self._err)
        self._buf = b""

    def _send(self, text):
        try:
            self.proc.stdin.write(text.encode("utf-8"))
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # psql already exited; the read below reports why

    def _stderr(self):
        self._err.seek(0)
        return self._err.read().decode("utf-8", "replace").strip()

    def _read_until(self, sentinel, stage, timeout=None):
        """Lines printed before ``sentinel``; fails with psql's error when it exits or times out."""
        deadline = time.monotonic() + (timeout or self.timeout)
        fd = self.proc.stdout.fileno()
        marker = sentinel.encode("utf-8") + b"\n"
        while marker not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BackupError(stage, "no answer from psql within %ss" % (timeout or self.timeout))
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not ready:
                continue
            data = os.read(fd, 65536)
            if not data:
                rc = self.proc.wait()
                raise BackupError(stage, "psql exited %s: %s" % (rc, self._stderr() or "no error output"))
            self._buf += data
        head, self._buf = self._buf.split(marker, 1)
        return [line for line in head.decode("utf-8").splitlines() if line]

    def open(self):
        """Start the transaction; returns (snapshot id, server version string, server version number)."""
        self._send(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n"
            "SELECT pg_export_snapshot(), current_setting('server_version'), current_setting('server_version_num');\n"
            "\\echo __datasafe_snapshot__\n"
        )
        lines = self._read_until("__datasafe_snapshot__", "open snapshot")
        if len(lines) != 1 or lines[0].count("|") != 2:
            raise BackupError("open snapshot", "unexpected answer from psql: %r" % lines)
        return tuple(lines[0].split("|"))

    def missing_tables(self, tables):
        """The tables of ``tables`` that do not exist (checked before pg_dump starts)."""
        if not tables:
            return []
        quoted = ", ".join("'%s'" % container.quote_ident(t).replace("'", "''") for t in tables)
        self._send(
            "SELECT t FROM unnest(ARRAY[%s]::text[]) AS t WHERE to_regclass(t) IS NULL;\n"
            "\\echo __datasafe_tables__\n" % quoted
        )
        return self._read_until("__datasafe_tables__", "check tables")

    def largest_table(self):
        """(schema, table, bytes, bytes of every such table) of the largest permanent table whose
        data pg_dump writes (not the system's, not an extension's), or None when there is none."""
        self._send(
            "SELECT json_build_array(n.nspname, c.relname, pg_catalog.pg_table_size(c.oid),"
            " sum(pg_catalog.pg_table_size(c.oid)) OVER ())"
            " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind = 'r' AND c.relpersistence = 'p'"
            " AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'"
            " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass"
            " AND d.objid = c.oid AND d.deptype = 'e')"
            " ORDER BY pg_catalog.pg_table_size(c.oid) DESC, n.nspname, c.relname LIMIT 1;\n"
            "\\echo __datasafe_largest__\n"
        )
        lines = self._read_until("__datasafe_largest__", "choose the split")
        if not lines:
            return None
        try:
            schema, table, size, total = json.loads(lines[0])
            return schema, table, int(size), int(total)
        except (ValueError, TypeError) as exc:
            raise BackupError("choose the split", "unexpected answer from psql: %r" % lines) from exc

    def count(self, tables):
        """Exact counts of ``tables`` inside the held transaction (so in the dump's snapshot)."""
        selects = ["SELECT '%s', count(*) FROM %s" % (t.replace("'", "''"), container.quote_ident(t)) for t in tables]
        self._send("\nUNION ALL ".join(selects) + ";\n\\echo __datasafe_counts__\n")
        lines = self._read_until("__datasafe_counts__", "count rows", timeout=24 * 3600)
        counts = {}
        for line in lines:
            name, _, n = line.rpartition("|")
            counts[name] = int(n)
        missing = [t for t in tables if t not in counts]
        if missing:
            raise BackupError("count rows", "no count returned for %s" % ", ".join(missing))
        return counts

    def close(self):
        """Commit (read-only) and check psql's exit status."""
        self._send("COMMIT;\n")
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            rc = self.proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        if rc != 0:
            raise BackupError("close snapshot", "psql exited %s: %s" % (rc, self._stderr() or "no error output"))

    def abort(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._err.close()


class Beside(threading.Thread):
    """Runs ``func(*args)`` in a thread beside the stream (the held session's counts, in the dump's
    snapshot; the roles dump; backup_run's side checks); :meth:`result` joins and returns its value
    or raises its error."""

    def __init__(self, func, *args):
        super().__init__(daemon=True)
        self.func, self.args, self.value, self.error = func, args, None, None

    def run(self):
        try:
            self.value = self.func(*self.args)
        except BaseException as exc:  # noqa: BLE001 - re-raised by result()
            self.error = exc

    def result(self):
        self.join()
        if self.error is not None:
            raise self.error
        return self.value


def _stage_stderr(handle):
    handle.seek(0)
    return handle.read().decode("utf-8", "replace").strip()


class _Inflater:
    """gzip decompression of a stream fed chunk by chunk, concatenated members followed; a corrupt
    stream raises BackupError at stage ``verify``, ``eof`` says whether the last member ended."""

    def __init__(self):
        self._d = _gzip_lib.decompressobj(31)

    def feed(self, chunk):
        try:
            data = self._d.decompress(chunk)
            while self._d.eof and self._d.unused_data:  # concatenated gzip members
                rest = self._d.unused_data
                self._d = _gzip_lib.decompressobj(31)
                data += self._d.decompress(rest)
        except (zlib.error, _gzip_lib.error) as exc:
            raise BackupError("verify", "gzip data is corrupt: %s" % exc) from exc
        return data

    @property
    def eof(self):
        return self._d.eof


class StreamVerifier(threading.Thread):
    """Decompresses a plain gzip (or uncompressed) dump as it is written, on its own core.

    It sees exactly the bytes written to the file; the file on disk is then proved equal to
    them by its sha256, so this is the same check as decompressing the file afterwards,
    without a second pass over a gigabyte.
    """

    def __init__(self, compression):
        super().__init__(daemon=True)
        self.compression = compression
        self.queue = queue.Queue(maxsize=64)
        self.inflate = _Inflater() if compression == "gzip" else None
        self.size, self.tail, self.error = 0, b"", None

    def feed(self, chunk):
        if self.error is None:
            self.queue.put(chunk)

    def run(self):
        while True:
            chunk = self.queue.get()
            if chunk is None:
                return
            if self.error is not None:
                continue
            try:
                data = chunk if self.inflate is None else self.inflate.feed(chunk)
            except BackupError as exc:
                self.error = exc
                continue
            self.size += len(data)
            self.tail = (self.tail + data[-4096:])[-4096:]

    def finish(self):
        """Stop the thread; returns (checks, uncompressed size) or raises BackupError."""
        self.queue.put(None)
        self.join()
        if self.error is not None:
            raise self.error
        checks = []
        if self.inflate is not None:
            if not self.inflate.eof:
                raise BackupError("verify", "the gzip stream is truncated (no end of stream)")
            checks.append("decompression (gzip) of every byte written")
        _check_tail(self.tail, "verify")
        checks.append("trailer '%s'" % TRAILER.decode())
        return checks, self.size


def write_all(fd, chunk, written):
    """Write all of ``chunk`` to ``fd``; returns ``written`` plus its length. A full disk or another
    write error raises BackupError at stage ``write``."""
    view = memoryview(chunk)
    while view:
        try:
            n = os.write(fd, view)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise BackupError("write", "the backup disk is full (%d bytes written)" % written) from exc
            raise BackupError("write", "cannot write the backup: %s" % exc.strerror) from exc
        view = view[n:]
        written += n
    return written


def stream_to_file(argvs, fd, stages, verifier=None, digest=None, procs=None):
    """Run ``argvs`` as a pipeline (argv lists, no shell) and write the last one's stdout to ``fd``.

    Returns (sha256 hex, bytes written). Every process's exit status is checked; a failure raises
    BackupError naming the stage furthest downstream that failed (the cause: a killed compressor
    also breaks pg_dump's pipe), and every process still running is killed. ``digest``: a sha256
    object to go on with (the caller may feed it more); ``procs``: a list the processes are added
    to as they start (so another thread can kill them).
    """
    procs = [] if procs is None else procs
    errs = []
    digest = hashlib.sha256() if digest is None else digest
    written = 0
    try:
        stdin = None
        for argv in argvs:
            err = tempfile.TemporaryFile()
            errs.append(err)
            proc = runner.spawn(argv, stdin=stdin, stdout=runner.PIPE, stderr=err)
            if stdin is not None:
                stdin.close()  # only the next process holds the pipe now, so it sees EOF/EPIPE
            stdin = proc.stdout
            procs.append(proc)
        out = procs[-1].stdout.fileno()
        while True:
            chunk = os.read(out, CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            if verifier is not None:
                verifier.feed(chunk)
            written = write_all(fd, chunk, written)
        rcs = [proc.wait() for proc in procs]
        # The failure furthest downstream is the cause: a compressor that dies breaks pg_dump's
        # pipe too, while a pg_dump that fails only ends its compressor's input normally.
        for err, stage, rc in reversed(list(zip(errs, stages, rcs))):
            if rc != 0:
                text = _stage_stderr(err)
                # An in-container pipeline (pg_dump | igzip) names its failing compressor itself.
                head, _, last = text.rpartition("\n")
                if last.startswith(_STAGE_MARK):
                    last = last[len(_STAGE_MARK) :]
                    stage, text = last.split(" ", 1)[0], (head + "\n" + last).strip()
                raise BackupError(stage, "exit status %s: %s" % (rc, text or "no error output"))
        return digest.hexdigest(), written
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
        for err in errs:
            err.close()


class DumpPart(threading.Thread):
    """A later part of a split dump (:func:`split_parts`), run beside the first: its own pipeline
    into its own partial file, decompressed and its trailer checked as it streams, as the first
    part is. :meth:`append_to` then copies it onto the dump's file."""

    def __init__(self, what, argvs, stages, path, compression):
        super().__init__(daemon=True)
        self.what, self.argvs, self.stages, self.path = what, argvs, stages, path
        self.verifier = StreamVerifier(compression)
        self.procs, self.error, self.stopped = [], None, False
        self.sha256 = self.uncompressed = None

    def run(self):
        if self.stopped:
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                self.verifier.start()
                try:
                    self.sha256, _ = stream_to_file(self.argvs, fd, self.stages, self.verifier, procs=self.procs)
                finally:
                    if self.verifier.is_alive():
                        self.verifier.queue.put(None)
                _, self.uncompressed = self.verifier.finish()
            finally:
                os.close(fd)
        except BackupError as exc:
            self.error = BackupError("%s (%s)" % (exc.stage, self.what), exc.message)
        except BaseException as exc:  # noqa: BLE001 - raised by append_to
            self.error = exc

    def stop(self):
        """Kill its processes (the first part failed) and wait for the thread."""
        self.stopped = True
        for proc in list(self.procs):
            if proc.poll() is None:
                proc.kill()
        if self.ident is not None:
            self.join()

    def append_to(self, fd, digest, written):
        """Wait for the part; append its file to ``fd`` and feed ``digest``; returns ``written``
        plus its size. The bytes read back must be the ones verified as they streamed (sha256)."""
        self.join()
        if self.error is not None:
            raise self.error
        own = hashlib.sha256()
        with open(self.path, "rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                own.update(chunk)
                digest.update(chunk)
                written = write_all(fd, chunk, written)
        if own.hexdigest() != self.sha256:
            raise BackupError("verify", "the part holding %s changed on disk after it was verified" % self.what)
        return written


def _check_tail(tail, stage):
    if TRAILER not in tail[-512:]:
        raise BackupError(stage, "the dump does not end with '%s': it is incomplete" % TRAILER.decode())


def verify(path, fmt, compression, expected_sha256, cont=None):
    """Verify a written backup from disk; returns (checks performed, uncompressed size or None)."""
    checks = []
    digest = hashlib.sha256()
    if fmt == "custom":
        actual = files.sha256_file(path)
        with open(path, "rb") as handle:
            argv = container.docker_exec(cont, ["pg_restore", "-f", "/dev/null"], interactive=True)
            proc = runner.spawn(argv, stdin=handle, stdout=runner.DEVNULL)
            _, err = proc.communicate()
        if proc.returncode != 0:
            raise BackupError(
                "verify",
                "pg_restore could not read the archive (exit %s): %s"
                % (proc.returncode, err.decode("utf-8", "replace").strip()),
            )
        checks.append("pg_restore read every block of the archive")
        size = None
    elif compression == "zstd":
        actual = files.sha256_file(path)
        proc = runner.spawn(["zstd", "-q", "-d", "-c", path])
        tail, size = b"", 0
        for chunk in iter(lambda: proc.stdout.read(CHUNK), b""):
            size += len(chunk)
            tail = (tail + chunk)[-4096:]
        err = proc.stderr.read()
        if proc.wait() != 0:
            raise BackupError("verify", "zstd cannot decompress the backup: %s" % err.decode("utf-8", "replace"))
        checks.append("decompression (zstd)")
        _check_tail(tail, "verify")
        checks.append("trailer '%s'" % TRAILER.decode())
    else:
        tail, size = b"", 0
        inflate = _Inflater() if compression == "gzip" else None
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                digest.update(chunk)
                data = chunk if inflate is None else inflate.feed(chunk)
                size += len(data)
                tail = (tail + data[-4096:])[-4096:]
        actual = digest.hexdigest()
        if inflate is not None:
            if not inflate.eof:
                raise BackupError("verify", "the gzip stream is truncated (no end of stream)")
            checks.append("decompression (gzip)")
        _check_tail(tail, "verify")
        checks.append("trailer '%s'" % TRAILER.decode())
    if actual != expected_sha256:
        raise BackupError("verify", "sha256 on disk %s differs from the stream's %s" % (actual, expected_sha256))
    checks.append("sha256 of the file on disk equals the stream's")
    return checks, size


def verify_sha256(path, expected):
    """Re-read the fsynced file: it must be exactly the bytes that were verified in flight."""
    actual = files.sha256_file(path)
    if actual != expected:
        raise BackupError("verify", "sha256 on disk %s differs from the stream's %s" % (actual, expected))
    return ["sha256 of the file on disk equals the stream's"]


def leftover_partials(backup_dir):
    """Temporary files of backups that died (only meaningful while holding the lock)."""
    return sorted(n for n in os.listdir(backup_dir) if n.startswith(".") and n.endswith(PARTIAL_SUFFIX))


def link_no_clobber(tmp, directory, name):
    """Give ``tmp`` its final name without ever replacing a file; returns the name used."""
    stem, ext = name, ""
    for suffix in manifest.SUFFIXES:
        if name.endswith(suffix):
            stem, ext = name[: -len(suffix)], suffix
            break
    candidate = name
    for n in range(1, 100):
        try:
            os.link(tmp, os.path.join(directory, candidate))
            os.unlink(tmp)
            return candidate
        except FileExistsError:
            candidate = "%s_%d%s" % (stem, n, ext)
    raise BackupError("rename", "too many backups named %s in %s" % (name, directory))


def shrink_problems(previous, size, counts, fmt, compression, ratio):
    """Why this backup looks far smaller than the previous good one (empty when it does not)."""
    if previous is None:
        return []
    old = previous["manifest"]
    problems = []
    if old.get("format") == fmt and old.get("compression") == compression and old.get("size"):
        if size < old["size"] * ratio:
            problems.append(
                "size %d bytes is under %d%% of the previous backup %s (%d bytes)"
                % (size, ratio * 100, old["file"], old["size"])
            )
    for table, was in sorted((old.get("counts") or {}).items()):
        now = counts.get(table)
        if now is not None and now < was:
            problems.append(
                "table %s has %d rows, %d fewer than in the previous backup %s" % (table, now, was - now, old["file"])
            )
    return problems


def run_backup(spec):
    """Make one verified backup. ``spec`` is a dict of the module's options (see pg_backup).

    Returns the manifest (a dict) with ``manifest_path`` and ``removed_partials`` added.
    The caller holds the directory lock.
    """
    directory = spec["backup_dir"]
    started = times.now_utc()
    t0 = time.monotonic()
    name = backup_name(spec["prefix"], started.astimezone(), spec["format"], spec["compression"])
    tmp = os.path.join(directory, ".%s%s" % (name, PARTIAL_SUFFIX))
    roles_tmp = os.path.join(directory, ".%s%s%s" % (name, roles.SUFFIX, PARTIAL_SUFFIX))
    session = SnapshotSession(spec["container"], spec["database"], spec["user"])
    counter = roles_job = None
    fd = None
    beside = []  # the later parts of a split dump
    try:
        snapshot, server_version, server_version_num = session.open()
        missing = session.missing_tables(spec["tables"])
        if missing:
            raise BackupError(
                "check tables",
                "no such table in %s: %s (fix datasafe_critical_tables)" % (spec["database"], ", ".join(missing)),
            )
        parts = split_parts(None)
        streamed = spec["format"] == "plain" and spec["compression"] in ("gzip", "none")
        if streamed and spec.get("split", "auto") != "never":
            parts = split_parts(session.largest_table(), spec.get("split", "auto"))
        try:
            compressor = container_compressor(
                runner.run,
                spec["container"],
                spec["format"],
                spec["compression"],
                spec["level"],
                spec["compress_on"],
                spec.get("container_compressor", "auto"),
            )
        except ValueError as exc:
            raise BackupError("compressor", str(exc)) from exc
        host = None
        if spec["format"] == "plain" and spec["compress_on"] == "host":
            host = host_compressor_argv(spec["compression"], spec["level"])
        dump_argv = functools.partial(
            pg_dump_argv,
            spec["container"],
            spec["database"],
            spec["user"],
            snapshot,
            spec["format"],
            spec["compression"],
            spec["level"],
            spec["compress_on"],
            spec["lock_wait_timeout"],
            spec.get("nice", 0),
            compressor,
        )

        def pipeline(options):
            """The argvs and stage names of one part's stream."""
            return [dump_argv(options)] + ([host] if host else []), ["pg_dump"] + ([host[0]] if host else [])

        if host:
            compressor = host[0]
        argvs, stages = pipeline(parts[0][1])
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        if spec["tables"]:
            counter = Beside(session.count, spec["tables"])
            counter.start()
        if spec.get("roles", True):  # cluster-wide, not in the snapshot: dumped beside the stream
            roles_job = Beside(dump_roles, spec, roles_tmp)
            roles_job.start()
        verifier = None
        if streamed:
            verifier = StreamVerifier(spec["compression"])
            verifier.start()
        for index, (what, options) in enumerate(parts[1:], start=1):
            part_argvs, part_stages = pipeline(options)
            part_tmp = os.path.join(directory, ".%s.part%d%s" % (name, index, PARTIAL_SUFFIX))
            beside.append(DumpPart(what, part_argvs, part_stages, part_tmp, spec["compression"]))
            beside[-1].start()
        digest = hashlib.sha256()
        try:
            sha256, size = stream_to_file(argvs, fd, stages, verifier, digest=digest)
        finally:
            if verifier is not None and verifier.is_alive():
                verifier.queue.put(None)
        for part in beside:  # in pg_dump's order, each verified as it streamed
            size = part.append_to(fd, digest, size)
            os.unlink(part.path)
        sha256 = digest.hexdigest()
        counts = counter.result() if counter is not None else {}
        session.close()
        try:
            os.fsync(fd)
        except OSError as exc:
            raise BackupError("fsync", "cannot flush the backup to disk: %s" % exc.strerror) from exc
        os.close(fd)
        fd = None
        if verifier is not None:
            checks, uncompressed = verifier.finish()
            uncompressed += sum(part.uncompressed for part in beside)
            if beside:
                checks.append(
                    "dumped in %d parts on one snapshot, each decompressed and its trailer checked as it was"
                    " written, appended in pg_dump's order" % len(parts)
                )
            checks += verify_sha256(tmp, sha256)
        else:
            checks, uncompressed = verify(tmp, spec["format"], spec["compression"], sha256, spec["container"])
        roles_block = roles_job.result() if roles_job is not None else None
        verified_at = times.now_utc()
        final = link_no_clobber(tmp, directory, name)
        if roles_block is not None:
            try:
                os.rename(roles_tmp, roles.path_for(os.path.join(directory, final)))
            except OSError as exc:
                os.unlink(os.path.join(directory, final))  # our own file of a moment ago: no half backup
                raise BackupError("roles", "cannot name the roles file: %s" % (exc.strerror or exc)) from exc
            roles_block["file"] = os.path.basename(roles.path_for(final))
        files.fsync_dir(directory)
    except BaseException:
        if counter is not None and counter.is_alive():
            session.abort()
            counter.join(5)
        session.abort()
        if roles_job is not None:
            roles_job.join()  # a short pg_dumpall: let it end before its file is removed
        for part in beside:
            part.stop()
        if fd is not None:
            os.close(fd)
        for leftover in [tmp, roles_tmp] + [part.path for part in beside]:
            if os.path.exists(leftover):
                os.unlink(leftover)
        raise
    ended = times.now_utc()
    path = os.path.join(directory, final)
    data = {
        "file": final,
        "path": path,
        "database": spec["database"],
        "container": spec["container"],
        "server_version": server_version,
        "server_version_num": int(server_version_num),
        "start": times.now_iso(started),
        "end": times.now_iso(ended),
        "duration_seconds": round(time.monotonic() - t0, 3),
        "size": size,
        "uncompressed_size": uncompressed,
        "sha256": sha256,
        "format": spec["format"],
        "compression": spec["compression"],
        "compress_level": spec["level"] if spec["compression"] != "none" else None,
        "compressed_on": spec["compress_on"] if spec["compression"] != "none" else None,
        "compressor": compressor if spec["compression"] != "none" else None,
        "kind": spec["kind"],
        "label": spec["label"],
        "app_revision": spec.get("app_revision"),
        "snapshot": snapshot,
        "parts": [what for what, _ in parts] if beside else None,
        "counts": counts,
        "counts_total": sum(counts.values()),
        "verified": True,
        "verified_at": times.now_iso(verified_at),
        "checks": checks,
        "restore_hint": restore_hint(final, spec),
    }
    if roles_block is not None:
        data["roles"] = roles_block
    return data


def dump_roles(spec, tmp):
    """``pg_dumpall --roles-only`` inside the container into ``tmp`` (0600), fsynced and verified.

    Returns the manifest's ``roles`` block (see :mod:`roles`); raises BackupError at stage ``roles``.
    """
    passwords = spec.get("role_auth", "hashes") == "hashes"
    argv = roles.dump_argv(spec["container"], spec["user"], passwords)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        proc = runner.spawn(argv, stdin=runner.DEVNULL, stdout=fd)
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise BackupError(
                "roles",
                "pg_dumpall --roles-only exited %s: %s (the connecting role must be a superuser to read "
                "password hashes; set datasafe_backup_role_passwords false otherwise)"
                % (proc.returncode, err.decode("utf-8", "replace").strip() or "no error output"),
            )
        os.fsync(fd)
    finally:
        os.close(fd)
    with open(tmp, "rb") as handle:
        data = handle.read()
    try:
        names = roles.verify_text(data.decode("utf-8"))
    except (roles.RolesError, UnicodeDecodeError) as exc:
        raise BackupError("roles", "the roles dump does not verify: %s" % exc) from exc
    return roles.manifest_block(tmp, data, passwords, names)


def restore_hint(name, spec):
    """The protocol's recovery command for this file (the restore playbook is the safer way)."""
    target = "docker exec -i %s psql -U %s -d %s" % (spec["container"], spec["user"], spec["database"])
    if spec["format"] == "custom":
        return "docker exec -i %s pg_restore -U %s -d %s < %s" % (
            spec["container"],
            spec["user"],
            spec["database"],
            name,
        )
    reader = {"gzip": "gunzip -c", "zstd": "zstd -dc", "none": "cat"}[spec["compression"]]
    return "%s %s | %s" % (reader, name, target)
