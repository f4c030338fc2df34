"""Files on disk: their sha256, and making a write survive a crash.

The one home of the small file helpers every engine uses: reading a file that may be absent,
hashing a backup (the manifest's check, the off-site copy's re-read, break-glass evidence), fsync
of a directory after a rename, and the atomic JSON write (temporary file, fsync, rename, fsync of the directory).
"""

import hashlib
import json
import os

CHUNK = 1 << 20


def read_text(path):
    """The text in ``path`` (UTF-8), None when there is no such file; other errors raise OSError."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def hash_file(path, drop_cache=False):
    """``(size, sha256 hex)`` of the file at ``path``, read from start to end in 1 MiB chunks.

    ``drop_cache`` asks the kernel to forget cached pages first, so a copy just written is
    re-read from its storage rather than from memory (best effort: network filesystems may
    still serve a client-side cache).
    """
    digest, size = hashlib.sha256(), 0
    fd = os.open(path, os.O_RDONLY)
    try:
        if drop_cache and hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        while True:
            chunk = os.read(fd, CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return size, digest.hexdigest()


def sha256_file(path):
    """The sha256 (hex) of the file at ``path``."""
    return hash_file(path)[1]


def fsync_dir(directory):
    """Flush a directory, so a rename or a new name in it survives a crash."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path, data, mode=0o600):
    """Write JSON to ``path`` atomically: temporary file, fsync, rename, fsync the directory."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, ".%s.tmp-%d" % (os.path.basename(path), os.getpid()))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            os.write(fd, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(directory)
