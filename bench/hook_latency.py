"""Per-call latency of the agent hook (bin/datasafe-guard hook), as an agent pays it.

Every call is a new process, exactly as Claude Code, Gemini CLI and Cursor start the hook
before each shell command: payloads of all three agents, benign and forbidden commands (SQL
in psql -c included). Prints the median and 90th percentile of the wall time per payload and
the median CPU time (user + system: what a call costs when the machine is not shared), the
bare Python start-up of the same interpreter for comparison, and as its last line the overall
median wall time in milliseconds (goal: under 300).

    .venv/bin/python bench/hook_latency.py [--rounds N]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOOK = [os.path.join(REPO, "bin", "datasafe-guard"), "hook"]
PAYLOADS = {
    "claude benign": {
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": "cd /srv/lms && git pull --ff-only && docker compose ps"},
    },
    "claude forbidden": {
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": "docker exec lms-postgres psql -U lms_user -c 'TRUNCATE patients'"},
    },
    "gemini benign": {
        "hook_event_name": "BeforeTool",
        "tool_name": "run_shell_command",
        "tool_input": {"command": "ls -la /var/tmp"},
    },
    "cursor forbidden": {"hook_event_name": "beforeShellExecution", "command": "docker compose down -v", "cwd": "/"},
}


CPU = []  # CPU time (user + system) of each call: what it costs on an idle machine


def timed(argv, data):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, input=data, capture_output=True, text=True, check=False)
    wall = (time.perf_counter() - start) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)
    return wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    timed(HOOK, json.dumps(PAYLOADS["claude benign"]))  # first call fills the parser-table cache
    every = []
    print("| payload | median ms | p90 ms | median CPU ms |")
    print("| --- | ---: | ---: | ---: |")
    for name, payload in PAYLOADS.items():
        data = json.dumps(payload)
        del CPU[:]
        samples = sorted(timed(HOOK, data) for _ in range(args.rounds))
        every += samples
        p90 = samples[int(len(samples) * 0.9) - 1]
        print("| %s | %.0f | %.0f | %.0f |" % (name, statistics.median(samples), p90, statistics.median(CPU)))
    del CPU[:]
    python = sorted(timed([sys.executable, "-c", "pass"], "") for _ in range(args.rounds))
    p90 = python[int(len(python) * 0.9) - 1]
    print("| python start-up alone | %.0f | %.0f | %.0f |" % (statistics.median(python), p90, statistics.median(CPU)))
    print("load average: %.1f %.1f %.1f" % os.getloadavg())
    print("median hook latency ms: %.0f" % statistics.median(every))


if __name__ == "__main__":
    main()
