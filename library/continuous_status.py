#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Is continuous recovery healthy? Archiving lag, failures, backup ages, repository size."""

DOCUMENTATION = r"""
---
module: continuous_status
short_description: Health and metrics of continuous recovery (pg_stat_archiver and pgBackRest info)
description:
  - Reads C(pg_stat_archiver) (age of the last archived WAL segment, failed attempts, segments
    waiting in pg_wal and the disk they take) and C(pgbackrest info --output=json) (newest good
    full, differential and incremental backup and their age), and the repository's size.
  - Fails (with O(fail_on_problems)) when archiving is off, failing, or more than
    O(max_lag_seconds) behind, or when the repository holds no good full backup, naming the
    cause and the fix. PostgreSQL itself keeps running whatever this finds.
  - When the server does not archive and O(required=false), reports C(enabled=false) and passes;
    the safe update's preflight calls it on every stack.
  - Optionally writes a Prometheus textfile (O(metrics_file)).
version_added: "0.2.0"
author: datasafe maintainers
options:
  stanza:
    description: The pgBackRest stanza (default derived from O(project), as continuous_plan does).
    type: str
  project:
    description: The compose project; names the stanza when O(stanza) is not given.
    type: str
  repo_dir:
    description: Host directory of the repository (its size is reported).
    type: path
  required:
    description: Fail when the server does not archive at all.
    type: bool
    default: true
  max_lag_seconds:
    description: Archiving further behind than this (with segments waiting) is a problem.
    type: int
    default: 300
  max_backup_age_hours:
    description: The newest pgBackRest backup older than this is a problem (0 disables).
    type: int
    default: 0
  fail_on_problems:
    description: Fail when RV(problems) is not empty.
    type: bool
    default: true
  metrics_file:
    description: Prometheus textfile to update (node_exporter's textfile collector).
    type: path
extends_documentation_fragment:
  - datasafe
attributes:
  check_mode:
    support: full
    description: It only reads (and writes the metrics file, which is an observation, not a change).
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Continuous recovery is healthy
  continuous_status:
    container: lms-postgres
    database: lms_slncity
    user: lms_user
    stanza: lms
    repo_dir: ~/backups-pgbackrest
"""

RETURN = r"""
enabled:
  description: The server archives WAL.
  returned: always
  type: bool
archiving:
  description: pg_stat_archiver as numbers, with ready_segments and wal_bytes.
  returned: success
  type: dict
summary:
  description: Newest good full/diff/incr backup and their ages.
  returned: when enabled
  type: dict
repo_bytes:
  description: Size of the repository directory.
  returned: when repo_dir is set
  type: int
problems:
  description: What is wrong, each naming its fix; empty when healthy.
  returned: always
  type: list
  elements: str
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import container, continuous, metrics, modulekit, runner, specs

FAMILIES = [
    metrics.gauge("datasafe_wal_last_archived_age_seconds", "Seconds since PostgreSQL last archived a WAL segment."),
    metrics.gauge("datasafe_wal_archive_failed_total", "Failed archive attempts (pg_stat_archiver.failed_count)."),
    metrics.gauge("datasafe_wal_archive_failing", "1 when the newest archive attempt failed."),
    metrics.gauge("datasafe_wal_ready_segments", "WAL segments waiting to be archived."),
    metrics.gauge("datasafe_wal_bytes", "Disk taken by pg_wal."),
    metrics.gauge(
        "datasafe_pgbackrest_last_backup_age_seconds", "Age of the newest good backup, by type and repository."
    ),
    metrics.gauge("datasafe_pgbackrest_repo_bytes", "Size of the pgBackRest repository directory."),
    metrics.gauge("datasafe_continuous_problems", "Problems continuous recovery has now (0 is healthy)."),
]


def main():
    module = AnsibleModule(
        argument_spec=specs.spec(
            specs.CONNECTION,
            stanza=dict(type="str"),
            project=dict(type="str"),
            repo_dir=dict(type="path"),
            required=dict(type="bool", default=True),
            max_lag_seconds=dict(type="int", default=300),
            max_backup_age_hours=dict(type="int", default=0),
            fail_on_problems=dict(type="bool", default=True),
            metrics_file=dict(type="path"),
        ),
        required_one_of=[("stanza", "project")],
        supports_check_mode=True,
    )
    p = module.params
    if not p["stanza"]:
        p["stanza"] = continuous.stanza_name(p["project"])
    run = runner.for_module(module)
    result = dict(changed=False, enabled=False, problems=[])
    arch = modulekit.call(
        module,
        lambda: continuous.archiver(run, p["container"], p["database"], p["user"]),
        "continuous status: cannot read pg_stat_archiver",
        (container.ContainerError,),
        **result,
    )
    result["archiving"] = arch
    result["enabled"] = continuous.archives(arch)
    if not result["enabled"] and not p["required"]:
        module.exit_json(**result)
    summary = None
    if result["enabled"]:
        try:
            summary = continuous.backups_summary(continuous.info(run, p["container"], p["stanza"]))
        except continuous.ContinuousError as exc:
            result["problems"].append("pgbackrest info failed: %s" % exc)
    result["summary"] = summary
    result["problems"] += continuous.health(
        arch, summary, p["stanza"], p["max_lag_seconds"], p["max_backup_age_hours"] * 3600
    )
    if p["repo_dir"]:
        result["repo_bytes"] = continuous.repo_size(p["repo_dir"])
    if p["metrics_file"]:
        labels = (("stanza", p["stanza"]),)

        def change(samples):
            for key in [k for k in samples if k[1][:1] == labels]:
                del samples[key]
            values = {
                "datasafe_wal_archive_failed_total": arch["failed_count"],
                "datasafe_wal_archive_failing": int(arch["failing"]),
                "datasafe_wal_ready_segments": arch["ready_segments"],
                "datasafe_wal_bytes": arch["wal_bytes"],
                "datasafe_continuous_problems": len(result["problems"]),
            }
            if arch["last_archived_age_seconds"] is not None:
                values["datasafe_wal_last_archived_age_seconds"] = arch["last_archived_age_seconds"]
            if result.get("repo_bytes") is not None:
                values["datasafe_pgbackrest_repo_bytes"] = result["repo_bytes"]
            for name, value in values.items():
                samples[(name, labels)] = metrics.format_value(value)
            for repo, one in sorted(((summary or {}).get("repos") or {}).items()):
                for kind in ("full", "diff", "incr"):
                    if kind in one and one[kind]["stop"]:
                        key = labels + (("type", kind), ("repo", repo))
                        samples[("datasafe_pgbackrest_last_backup_age_seconds", key)] = metrics.format_value(
                            round(time.time() - one[kind]["stop"])
                        )

        try:
            result["metrics_file"] = metrics.update(p["metrics_file"], FAMILIES, change)
        except OSError as exc:
            result["problems"].append("cannot write the metrics file %s: %s" % (p["metrics_file"], exc))
    if result["problems"] and p["fail_on_problems"]:
        module.fail_json(msg="continuous recovery is not healthy: %s" % "; ".join(result["problems"]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
