"""Per-call latency of the agent hook (bin/datasafe-guard hook), as an agent pays it.

Every call is a new process, exactly as Claude Code, Gemini CLI and Cursor start the hook
before each shell command: payloads of all three agents, benign and forbidden commands (SQL
in psql -c included). Prints the median and 90th percentile per payload, the bare Python
start-up of the same interpreter for comparison, and as its last line the overall median in
milliseconds (goal: under 300).

    .venv/bin/python bench/hook_latency.py [--rounds N]
"""

import argparse
import json
import os
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


def timed(argv, data):
    start = time.perf_counter()
    subprocess.run(argv, input=data, capture_output=True, text=True, check=False)
    return (time.perf_counter() - start) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    timed(HOOK, json.dumps(PAYLOADS["claude benign"]))  # first call fills the parser-table cache
    every = []
    print("| payload | median ms | p90 ms |")
    print("| --- | ---: | ---: |")
    for name, payload in PAYLOADS.items():
        data = json.dumps(payload)
        samples = sorted(timed(HOOK, data) for _ in range(args.rounds))
        every += samples
        print("| %s | %.0f | %.0f |" % (name, statistics.median(samples), samples[int(len(samples) * 0.9) - 1]))
    python = sorted(timed([sys.executable, "-c", "pass"], "") for _ in range(args.rounds))
    print("| python start-up alone | %.0f | %.0f |" % (statistics.median(python), python[int(len(python) * 0.9) - 1]))
    print("load average: %.1f %.1f %.1f" % os.getloadavg())
    print("median hook latency ms: %.0f" % statistics.median(every))


if __name__ == "__main__":
    main()
