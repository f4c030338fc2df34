#!/usr/bin/env python3
"""The last lines of make test: what failed and where the time went, readable from a CI tail alone.

usage: suite_summary.py PYTEST_LOG PYTEST_JUNIT_XML MOLECULE_LOG

Prints pytest's failed and errored test ids (its -ra summary lines), the slowest test files by
the sum of their tests' times (setup, call and teardown, from the JUnit XML), each molecule
scenario's time, and for a failed scenario the lines that say why (fatal tasks, failed testinfra
tests). Reads logs only; a missing or unreadable log is said, never guessed.
"""

import collections
import re
import sys
import xml.etree.ElementTree as ET  # noqa: S405 - our own pytest's report

SLOWEST = 8
REASONS_PER_SCENARIO = 12
REASON = re.compile(r"^(fatal: |FAILED |ERROR |E   |.*\bfailed=[1-9]|.*Error: )")


def read(path):
    try:
        with open(path, errors="replace") as handle:
            return handle.read().splitlines()
    except OSError as exc:
        print("summary: cannot read %s: %s" % (path, exc.strerror))
        return []


def pytest_failures(lines):
    return [line for line in lines if re.match(r"^(FAILED|ERROR) ", line)]


def file_times(junit):
    try:
        root = ET.parse(junit).getroot()  # noqa: S314 - our own pytest's report
    except (OSError, ET.ParseError) as exc:
        print("summary: no pytest times (%s)" % exc)
        return []
    totals = collections.Counter()
    for case in root.iter("testcase"):
        module = case.get("classname", "?").split("::")[0]
        # classname is dotted: tests.operator.test_adopt.SomeClass -> the file's part
        parts = module.split(".")
        while parts and not parts[-1].startswith("test_"):
            parts.pop()
        totals["/".join(parts) + ".py" if parts else module] += float(case.get("time") or 0)
    return totals.most_common(SLOWEST)


def molecule_scenarios(lines):
    """(scenario, seconds or None, reason lines) for every scenario the log started."""
    scenarios, current, reasons = [], None, []
    for line in lines:
        started = re.match(r"^== molecule test -s (\S+)$", line)
        took = re.match(r"^== molecule scenario (\S+) took (\d+) s$", line)
        if started:
            current, reasons = started.group(1), []
        elif took and took.group(1) == current:
            scenarios.append((current, int(took.group(2)), reasons))
            current = None
        elif current and REASON.match(line):
            reasons.append(line.strip()[:200])
    if current:
        scenarios.append((current, None, reasons))
    return scenarios


def main(pytest_log, junit, molecule_log):
    failures = pytest_failures(read(pytest_log))
    print("pytest: %d failed or errored" % len(failures))
    for line in failures:
        print("  " + line[:240])
    slowest = file_times(junit)
    if slowest:
        print("pytest: slowest files (sum of their tests' times)")
        for name, seconds in slowest:
            print("  %6.0f s  %s" % (seconds, name))
    molecule_lines = read(molecule_log)
    failed = set()
    for line in molecule_lines:
        match = re.match(r"^molecule: FAILED scenario\(s\):(.*)$", line)
        if match:
            failed.update(match.group(1).split())
    print("molecule: %s" % ("failed: " + " ".join(sorted(failed)) if failed else "no scenario failed"))
    for scenario, seconds, reasons in molecule_scenarios(molecule_lines):
        took = "%d s" % seconds if seconds is not None else "did not finish"
        print("  %-16s %s%s" % (scenario, took, "  FAILED" if scenario in failed else ""))
        if scenario in failed:
            for line in reasons[-REASONS_PER_SCENARIO:]:
                print("      " + line)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
