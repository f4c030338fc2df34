"""A private Docker engine for the pin tests: its own dockerd, data root and socket.

The pin tests run ``docker volume prune`` and ``docker system prune -a --volumes`` for real. On
the shared engine those would remove every colleague's stopped containers, unused images and
unused volumes (the demo's too, while it is down); on a private engine they can only reach
what the test put there. The engine is the host's own dockerd binary (no registry: the
database image is copied in with ``docker save | docker load``), bridge-less, with no iptables,
listening only on a unix socket in its own directory under /var/tmp, and it is stopped and its
directory removed when the tests end.
"""

import os
import shutil
import signal
import subprocess
import time
import uuid


class PrivateEngine:
    def __init__(self, images=()):
        self.root = "/var/tmp/dspin-%s" % uuid.uuid4().hex[:8]  # short: unix socket paths are limited
        self.sock = os.path.join(self.root, "docker.sock")
        self.host = "unix://" + self.sock
        self.images = list(images)
        self.proc = None
        self.env = dict(os.environ, DOCKER_HOST=self.host)

    def docker(self, *args, check=True, data=None):
        return subprocess.run(["docker", *args], input=data, env=self.env, capture_output=True, text=True, check=check)

    def start(self, timeout=120):
        os.makedirs(self.root, mode=0o700)
        log = open(os.path.join(self.root, "dockerd.log"), "wb")  # noqa: SIM115  (kept open for the daemon)
        self.proc = subprocess.Popen(
            [
                "dockerd",
                "--data-root",
                os.path.join(self.root, "data"),
                "--exec-root",
                os.path.join(self.root, "exec"),
                "--pidfile",
                os.path.join(self.root, "dockerd.pid"),
                "--host",
                self.host,
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while self.docker("version", check=False).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("private dockerd did not start:\n%s" % self.log())
            time.sleep(0.5)
        for image in self.images:
            save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)  # from the shared engine
            load = subprocess.run(["docker", "load", "-q"], stdin=save.stdout, env=self.env, capture_output=True)
            save.stdout.close()
            if save.wait() != 0 or load.returncode != 0:
                raise RuntimeError("could not copy %s into the private engine: %s" % (image, load.stderr))
        return self

    def log(self):
        try:
            with open(os.path.join(self.root, "dockerd.log"), encoding="utf-8", errors="replace") as handle:
                return handle.read()[-3000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            # everything in this engine is the test's own
            ids = self.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, check=False)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        with open("/proc/mounts", encoding="utf-8") as handle:
            mounted = [line.split()[1] for line in handle if line.split()[1].startswith(self.root + "/")]
        for path in sorted(mounted, reverse=True):
            subprocess.run(["umount", path], check=False, capture_output=True)
        if self.root.startswith("/var/tmp/dspin-") and os.path.isdir(self.root):
            shutil.rmtree(self.root, ignore_errors=True)
