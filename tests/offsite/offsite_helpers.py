"""Helpers for the off-site tests: real backups of a real throwaway database, a real S3 server.

The backups are real ``pg_dump`` output of a seeded throwaway PostgreSQL container, with a
manifest written to the backup role's contract (file, path, database, size, sha256, kind, end,
verified). The S3 server is moto in server mode on a free loopback port, started and stopped
here (only the process this fixture started is ever stopped).
"""

import datetime
import gzip
import hashlib
import json
import os
import socket
import subprocess
import time
import uuid

from pgbed import ThrowawayPostgres, free_port  # noqa: F401 (re-exported to the off-site tests)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


VENV_BIN = os.path.join(REPO, ".venv", "bin")
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
TRAILER = b"-- PostgreSQL database dump complete"


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def make_backup(pg, backup_dir, name, end, kind="scheduled"):
    """A real gzip'd pg_dump of ``pg`` at ``backup_dir/name`` with a contract manifest beside it."""
    os.makedirs(backup_dir, mode=0o700, exist_ok=True)
    path = os.path.join(backup_dir, name)
    tmp = path + ".partial"
    start = datetime.datetime.now(datetime.timezone.utc)
    with open(tmp, "wb") as out:
        proc = subprocess.run(
            ["docker", "exec", pg.container, "pg_dump", "-U", pg.user, "-Z", "6", pg.db],
            stdout=out,
            stderr=subprocess.PIPE,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    with gzip.open(tmp, "rb") as handle:
        assert TRAILER in handle.read()[-4096:]
    os.chmod(tmp, 0o600)
    os.rename(tmp, path)
    manifest = {
        "file": name,
        "path": path,
        "database": pg.db,
        "container": pg.container,
        "size": os.path.getsize(path),
        "sha256": sha256_of(path),
        "format": "plain",
        "compression": "gzip",
        "kind": kind,
        "label": None,
        "start": start.isoformat(),
        "end": end,
        "counts": pg.counts(),
        "verified": True,
        "verified_at": end,
        "checks": ["decompression", "trailer", "sha256"],
    }
    with open(path + ".json", "w") as handle:
        json.dump(manifest, handle, indent=2)
    os.chmod(path + ".json", 0o600)
    return path


# The off-site ledger is the off-site runs' own record (written on every run, like the metrics
# file); everything else in a backup directory must be exactly as it was.
LEDGER_FILES = ("offsite-ledger.json", ".offsite-ledger.lock")


def local_hashes(directory):
    return {
        name: sha256_of(os.path.join(directory, name))
        for name in sorted(os.listdir(directory))
        if os.path.isfile(os.path.join(directory, name)) and name not in LEDGER_FILES
    }


class Moto:
    """moto's S3 server on a loopback port; ``stop``/``start`` let a test take it away."""

    def __init__(self, log_dir):
        self.port = free_port()
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self.log = os.path.join(log_dir, "moto.log")
        self.proc = None

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [os.path.join(VENV_BIN, "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.client().list_buckets()
                return self
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.2)
        raise RuntimeError("moto_server did not start; see %s" % self.log)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10),
        )

    def bucket(self):
        name = "dstest-%s" % uuid.uuid4().hex[:12]
        self.client().create_bucket(Bucket=name)
        return name


# --------------------------------------------------------------------------- an sshd on loopback

SSHD = "/usr/sbin/sshd"


def keygen(path):
    """A throwaway ed25519 key at ``path`` (a pathlib.Path); its public line, split."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return (path.parent / (path.name + ".pub")).read_text().split()


class Sshd:
    """A real sshd on a free 127.0.0.1 port with throwaway host and client keys (root logs in by key).

    ``ssh_args`` reach it with the host key checked strictly against a known_hosts written here.
    """

    def __init__(self, home):
        self.home = home
        self.port = free_port()
        self.client_key = home / "client_ed25519"
        self.known_hosts = home / "known_hosts"
        self.proc = None
        self.ssh_args = [
            "-p",
            str(self.port),
            "-i",
            str(self.client_key),
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "UserKnownHostsFile=%s" % self.known_hosts,
        ]

    def start(self):
        home = self.home
        host_key_type, host_key, _ = keygen(home / "host_ed25519")
        keygen(self.client_key)
        (home / "authorized_keys").write_text((home / "client_ed25519.pub").read_text())
        config = home / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    "Port %d" % self.port,
                    "ListenAddress 127.0.0.1",
                    "HostKey %s" % (home / "host_ed25519"),
                    "AuthorizedKeysFile %s" % (home / "authorized_keys"),
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "UsePAM no",
                    "StrictModes no",
                    "PidFile %s" % (home / "sshd.pid"),
                    "",
                ]
            )
        )
        self.known_hosts.write_text("[127.0.0.1]:%d %s %s\n" % (self.port, host_key_type, host_key))
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation directory
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.proc.kill()
                    raise RuntimeError("sshd did not start: %s" % self.proc.stderr.read()) from None
                time.sleep(0.1)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
