"""Command line of the fleet runner (bin/datasafe-fleet)."""

import argparse
import json
import os
import sys

from datasafe_fleet.runner import FleetError, run_fleet

USAGE = """examples:
  datasafe-fleet verify                                   every site, read-only
  datasafe-fleet safe_update -i inventory/sites.yml       one site at a time, stops at the first failure
  datasafe-fleet backup --limit site2 --report /var/log/datasafe/fleet.json
exit status: the playbook's (0 only when every host succeeded); 2 for bad input."""


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="datasafe-fleet",
        description="Run a datasafe playbook over the fleet with ansible-runner; keep artifacts, "
        "stream per-host results, write a JSON fleet report.",
        epilog=USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("playbook", help="a datasafe playbook name (verify, backup, safe_update ...) or a path")
    parser.add_argument("-i", "--inventory", action="append", default=[], help="inventory source (repeatable)")
    parser.add_argument("-l", "--limit", help="only these hosts (ansible's --limit pattern)")
    parser.add_argument("-e", "--extra-var", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--check", action="store_true", help="a dry run (ansible's check mode)")
    parser.add_argument(
        "--artifacts",
        default=os.path.expanduser("~/datasafe-fleet"),
        help="where ansible-runner keeps every run (default: ~/datasafe-fleet)",
    )
    parser.add_argument("--report", help="also write the fleet report here (JSON)")
    parser.add_argument("--quiet", action="store_true", help="no per-host lines while running")
    args = parser.parse_args(argv)
    extravars = {}
    for item in args.extra_var:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            parser.error("--extra-var wants NAME=VALUE, got '%s'" % item)
        extravars[name] = value
    try:
        report = run_fleet(
            args.playbook,
            args.inventory,
            args.artifacts,
            limit=args.limit,
            extravars=extravars,
            check=args.check,
            stream=None if args.quiet else sys.stdout,
            report_path=args.report,
        )
    except FleetError as exc:
        print("datasafe-fleet: %s; nothing was run" % exc, file=sys.stderr)
        return 2
    print(json.dumps({"status": report["status"], "rc": report["rc"], "summary": report["summary"]}, sort_keys=True))
    print("fleet report: %s" % os.path.join(report["artifacts"], "fleet-report.json"))
    return report["rc"] if isinstance(report["rc"], int) else 1


if __name__ == "__main__":
    sys.exit(main())
