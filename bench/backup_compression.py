#!/usr/bin/env python3
"""Where should a backup be compressed? Times each placement on a real database, prints a table.

    bench/backup_compression.py CONTAINER [--runs N] [--dir DIR]

Every variant dumps the same database through `docker exec` into DIR and is timed end to end
(best of N runs); pipelines are argv lists with every exit status checked. The last column
is the time relative to the protocol's manual commands (pg_dump > file.sql && gzip file.sql).
"""

import argparse
import os
import shutil
import subprocess
import time

USER, DB = "lms_user", "lms_slncity"


def variants(c):
    dump = ["docker", "exec", c, "pg_dump", "-U", USER, DB]
    return [
        (
            "manual: pg_dump > file.sql && gzip file.sql (gzip -6, host)",
            [[dump, "m.sql"], [["gzip", "-f", "m.sql"], None]],
            "m.sql.gz",
        ),
        ("uncompressed stream through docker exec", [[dump, "raw.sql"]], "raw.sql"),
        (
            "pg_dump -Z1 in the container (datasafe's default without igzip)",
            [[dump + ["-Z", "1"], "z1.sql.gz"]],
            "z1.sql.gz",
        ),
        ("pg_dump -Z3 in the container", [[dump + ["-Z", "3"], "z3.sql.gz"]], "z3.sql.gz"),
        ("pg_dump -Z6 in the container", [[dump + ["-Z", "6"], "z6.sql.gz"]], "z6.sql.gz"),
        (
            "gzip -1 in the container (bash -o pipefail)",
            [
                [
                    ["docker", "exec", c, "bash", "-o", "pipefail", "-c", "pg_dump -U %s %s | gzip -1" % (USER, DB)],
                    "cg1.sql.gz",
                ]
            ],
            "cg1.sql.gz",
        ),
        (
            "igzip -1 in the container (ISA-L, Debian's isal; datasafe's default where present)",
            [
                [
                    ["docker", "exec", c, "bash", "-o", "pipefail", "-c", "pg_dump -U %s %s | igzip -1" % (USER, DB)],
                    "ig1.sql.gz",
                ]
            ],
            "ig1.sql.gz",
        ),
        ("gzip -1 on the host", [[dump, None, ["gzip", "-1"], "hg1.sql.gz"]], "hg1.sql.gz"),
        ("pigz -1 on the host", [[dump, None, ["pigz", "-1"], "hp1.sql.gz"]], "hp1.sql.gz"),
        ("zstd -3 on the host", [[dump, None, ["zstd", "-q", "-3"], "zs.sql.zst"]], "zs.sql.zst"),
        ("custom format -Fc -Z1 in the container", [[dump + ["-Fc", "-Z", "1"], "c1.dump"]], "c1.dump"),
    ]


def run_step(step, cwd):
    """step: [argv, outfile] or [argv, None, argv2, outfile] (a two-stage pipeline)."""
    if len(step) == 2:
        argv, out = step
        with open(os.path.join(cwd, out), "wb") if out else open(os.devnull, "wb") as sink:
            rc = subprocess.run(argv, stdout=sink, cwd=cwd, check=False).returncode
        if rc != 0:
            raise SystemExit("%s failed (exit %d)" % (argv, rc))
        return
    first, _, second, out = step
    with open(os.path.join(cwd, out), "wb") as sink:
        a = subprocess.Popen(first, stdout=subprocess.PIPE, cwd=cwd)
        b = subprocess.Popen(second, stdin=a.stdout, stdout=sink, cwd=cwd)
        a.stdout.close()
        rcs = (b.wait(), a.wait())
    if any(rcs):
        raise SystemExit("%s | %s failed (exit %s)" % (first, second, rcs))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("container")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--dir", default="/var/tmp/datasafe-bench-compression")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    rows = []
    try:
        for label, steps, result in variants(args.container):
            if any(s[2][0] == "pigz" for s in steps if len(s) == 4) and not shutil.which("pigz"):
                rows.append((label, None, None))
                continue
            probe = ["docker", "exec", args.container, "sh", "-c", "command -v igzip"]
            if "igzip" in label and subprocess.run(probe, capture_output=True, check=False).returncode != 0:
                rows.append((label, None, None))
                continue
            best = None
            for _ in range(args.runs):
                for name in os.listdir(args.dir):
                    os.unlink(os.path.join(args.dir, name))
                t0 = time.monotonic()
                for step in steps:
                    run_step(step, args.dir)
                best = min(best or 1e9, time.monotonic() - t0)
            rows.append((label, best, os.path.getsize(os.path.join(args.dir, result))))
    finally:
        shutil.rmtree(args.dir, ignore_errors=True)
    manual = rows[0][1]
    print("| placement | seconds | size MB | time vs manual |")
    print("| --- | ---: | ---: | ---: |")
    for label, secs, size in rows:
        if secs is None:
            print("| %s | (not installed) | | |" % label)
        else:
            print("| %s | %.2f | %.1f | %.2f |" % (label, secs, size / 1e6, secs / manual))


if __name__ == "__main__":
    main()
