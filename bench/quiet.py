"""A quiet machine for a measurement: the test bed's other stacks stopped, then started again.

The test bed's other stacks are recognised by where compose ran them from: the demo (make demo,
DEMO_ROOT) and the benchmark database (make bench-db, project dsbench from this checkout).
Their healthchecks start a process every second on each container; on a 2-core machine that
noise lands in whichever side is being timed. Never a stack of anyone else's: a container
qualifies only by both its project and its directory.
"""

import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_BED_STACKS = {
    ("datasafe-demo", os.path.join(os.environ.get("DEMO_ROOT", "/var/tmp/datasafe-demo"), "app")),
    ("dsbench", os.path.join(REPO, "examples", "lms")),
}


def _docker(*args):
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit("quiet machine: docker %s failed: %s" % (args[0], proc.stderr.strip()[-500:]))
    return proc.stdout


class QuietMachine:
    """Stop the test bed's other stacks for the measurement (``docker stop``: volumes and data
    untouched), start exactly those again afterwards, database first. ``say`` prints a line."""

    def __init__(self, enabled, say=print):
        self.enabled, self.say, self.stopped = enabled, say, []

    def __enter__(self):
        if not self.enabled:
            return self
        fmt = '{{.Name}}|{{index .Config.Labels "com.docker.compose.project"}}|'
        fmt += '{{index .Config.Labels "com.docker.compose.project.working_dir"}}|'
        fmt += '{{index .Config.Labels "com.docker.compose.service"}}'
        ids = _docker("ps", "-q").split()
        out = _docker("inspect", "--format", fmt, *ids) if ids else ""
        rows = [line.split("|") for line in out.splitlines()]
        mine = [(name.lstrip("/"), service) for name, project, wd, service in rows if (project, wd) in TEST_BED_STACKS]
        # applications first, databases last (they serve the applications)
        self.stopped = [name for name, service in sorted(mine, key=lambda m: m[1] == "postgres")]
        if self.stopped:
            self.say("quiet machine: stopping %s (docker stop; volumes untouched)" % ", ".join(self.stopped))
            _docker("stop", *self.stopped)
        return self

    def __exit__(self, *exc):
        if self.stopped:
            _docker("start", *reversed(self.stopped))
            self.say("quiet machine: started %s again" % ", ".join(reversed(self.stopped)))
