#!/usr/bin/python
# -*- coding: utf-8 -*-
"""A verified PostgreSQL backup, dumped inside the container, with a manifest beside it."""

DOCUMENTATION = r"""
---
module: pg_backup
short_description: Verified backup of a PostgreSQL database running in a container
description:
  - Runs C(pg_dump) inside the database container (so client and server versions always
    match) on a snapshot exported by a C(REPEATABLE READ) transaction that a C(psql)
    session holds open; the same transaction counts the O(tables) exactly, so the counts
    in the manifest describe exactly what was dumped.
  - Compresses inside the container with C(pg_dump -Z) by default (gzip, so the protocol's
    C(gunzip -c file | psql) recovery keeps working); zstd, or gzip/pigz on the host, and
    C(pg_dump)'s custom format are options.
  - Writes the stream under a temporary name (C(.<name>.partial)), fsyncs it, verifies it
    from disk (sha256, full decompression, the dump's completion trailer; C(pg_restore)
    reads every block of a custom archive), and only then links it to its final name,
    never replacing an existing file. The JSON manifest (C(<name>.json), mode 0600) is
    written last, atomically.
  - Every stage's exit status is checked. On any failure the temporary file is removed,
    nothing else is touched, and the task fails naming the stage.
  - Takes an exclusive lock on the backup directory, so two backups never overlap; a lock
    left by a dead process is released by the kernel with it.
  - Flags a backup far smaller than the newest good backup of the same database (size
    under O(shrink_ratio) of it, or any critical table with fewer rows) and warns, or fails
    with O(fail_on_shrink). The new backup is kept either way; it is a faithful copy.
  - Writes a Prometheus textfile (O(metrics_file)) and a change-log entry on every run,
    success or failure.
version_added: "0.1.0"
author: datasafe maintainers
options:
  database:
    description: Database to back up.
  user:
    description: Role C(pg_dump) and C(psql) connect as (over the container's local socket).
  backup_dir:
    description: Directory for backups; created with mode 0700 (an existing one is tightened to 0700).
    type: path
    required: true
  tables:
    description: Critical tables counted exactly in the dump's snapshot (recorded in the manifest).
    type: list
    elements: str
    default: []
  kind:
    description: Why the backup is made; picks the name prefix and the retention policy.
    type: str
    choices: [manual, scheduled, pre-change]
    default: manual
  label:
    description: Free text recorded in the manifest (for example C(before migration 42)).
    type: str
    default: ""
  prefix:
    description: File name prefix of scheduled and manual backups (C(<prefix>_YYYYMMDD_HHMMSS.sql.gz)).
    type: str
    default: lms_backup
  pre_change_prefix:
    description: File name prefix of pre-change backups.
    type: str
    default: BEFORE_UPDATE
  format:
    description: V(plain) SQL (restorable with C(psql)) or C(pg_dump)'s V(custom) archive (C(pg_restore)).
    type: str
    choices: [plain, custom]
    default: plain
  compression:
    description: V(gzip) keeps C(gunzip -c file | psql) working; V(zstd) compresses on the host.
    type: str
    choices: [gzip, zstd, none]
    default: gzip
  compress_level:
    description: Compression level (gzip 1-9, default 1; zstd 1-19, default 3; measured in docs/measurements.md).
    type: int
  compress_on:
    description:
      - Where to compress. V(container) uses C(pg_dump -Z) (fastest, measured in docs/backups.md);
        V(host) pipes the plain stream to C(pigz) (or C(gzip)) or C(zstd) on the host;
        V(auto) is V(container) for gzip and V(host) for zstd.
    type: str
    choices: [auto, container, host]
    default: auto
  container_compressor:
    description:
      - What compresses a plain gzip dump in the container. V(igzip) (ISA-L, Debian's package C(isal))
        in a pipeline after C(pg_dump), several times faster than zlib at levels 1-3 (measured in
        docs/measurements.md); V(pg_dump) is its own C(-Z); V(auto) takes igzip when the image has it
        and the level is 1-3, else C(pg_dump -Z). The file is gzip either way.
    type: str
    choices: [auto, pg_dump, igzip]
    default: auto
  split:
    description:
      - Split a plain gzip (or uncompressed) dump over three C(pg_dump) sessions on the one exported
        snapshot, run at once so the dump uses more than one core - the schema and the data of
        every table but the largest, the largest table's data, and the indexes, constraints and
        triggers. Each part is compressed, decompressed and its trailer checked as it streams;
        the parts are appended in C(pg_dump)'s order, so the file is one gzip stream that
        C(gunzip -c file | psql) restores as it restores a single dump.
      - V(auto) splits when the largest table and the rest of the tables each hold at least 32 MiB;
        V(always) splits whenever there is a table; V(never) keeps one session.
    type: str
    choices: [auto, never, always]
    default: auto
  app_dir:
    description: The application's git checkout; its C(HEAD) is recorded as C(app_revision) (null if not git).
    type: path
  fail_on_shrink:
    description: Fail (after keeping the new, verified backup) when it is flagged as far smaller than the previous one.
    type: bool
    default: false
  shrink_ratio:
    description: Flag a backup whose size is under this fraction of the previous good backup's.
    type: float
    default: 0.5
  metrics_file:
    description:
      - Prometheus textfile (node_exporter textfile collector) updated on every run, atomically and serialised
        by a lock file C(<metrics_file>.lock) beside it; the samples of other databases and kinds are kept.
    type: path
  change_log:
    description: The protocol's change log (C(~/change-log.txt)); a JSON line goes to C(change-log.jsonl) beside it.
    type: path
  lock_timeout:
    description: Seconds to wait for another backup in the same directory to finish before failing.
    type: int
    default: 0
  lock_wait_timeout:
    description: Seconds C(pg_dump) waits for its table locks (a migration holding a table) before failing.
    type: int
    default: 120
  nice:
    description:
      - Run this backup at a lower CPU priority (0 to 19, as C(nice -n)). That covers C(pg_dump)
        and its compression inside the container, and this module's own hashing and verification
        on the host. The restore uses it for its safety backup, which runs beside the restore of the
        backup and must not slow it; the backup is still complete and verified before it returns.
      - 0 (the default) keeps the normal priority. The server process answering C(pg_dump) keeps
        the server's priority.
    type: int
    default: 0
  roles:
    description:
      - Also save the cluster's roles (C(pg_dumpall --roles-only), inside the container) as
        C(<backup>.roles), mode 0600, verified (trailer, every statement a role statement,
        sha256) and recorded in the manifest's C(roles) block. Every restore path creates the
        roles a server lacks from it before loading, and never alters existing ones.
    type: bool
    default: true
  role_auth:
    description:
      - V(hashes) keeps the roles' password hashes (SCRAM verifiers, never clear text) in the roles
        file, so the application logs in on a new machine. V(none) runs C(pg_dumpall
        --no-role-passwords), and re-created login roles have no password until an operator sets one.
    type: str
    choices: [hashes, none]
    default: hashes
  guard_check:
    description:
      - Also read the guard inside PostgreSQL (M(db_guard) O(db_guard#module:state=checked)'s own
        check) beside the dump, in this module run, so the backup's playbook does not start a
        module for it afterwards. It never fails the backup; the result's RV(guard_ok) says whether
        the check passed; anything else (a changed guard, an error reading it) is left to the
        M(db_guard) task, which fails naming it.
      - With O(guard_metrics_file), a passing check writes the guard's metrics there, as M(db_guard) does.
    type: bool
    default: false
  guard_required:
    description:
      - With O(guard_check), the guard must be installed to pass (M(db_guard)'s O(db_guard#module:required)).
    type: bool
    default: false
  guard_metrics_file:
    description:
      - With O(guard_check), the Prometheus textfile M(db_guard) writes (O(db_guard#module:metrics_file)).
    type: path
  archiving_probe:
    description:
      - Also read C(pg_stat_archiver) beside the dump (M(continuous_status)'s reading) and return
        RV(archiving_enabled), so the backup's playbook skips continuous recovery's tasks without
        a module run of their own when the server does not archive WAL. Never fails the backup.
    type: bool
    default: false
  retention:
    description:
      - Prune O(backup_dir) by this retention policy in the same run, right after the new backup
        is verified, named and recorded, with M(backup_retention)'s engine given the new backup (its
        sha256 is re-checked before anything is removed). One module run fewer than a
        M(backup_retention) task after it.
      - Give it only when nothing has to happen between the backup and pruning; the backup role
        passes it when no off-site copy follows in the same run (an off-site copy must come first,
        so that the new backup's copy counts when older ones are judged).
      - Checked before the backup starts; a bad policy fails the task and changes nothing. When
        pruning fails after a good backup, the task fails naming it, and the new backup is kept,
        verified and recorded (RV(path)).
      - Not applied in check mode (nothing is pruned before a backup exists).
    type: dict
    suboptions:
      days:
        description: As M(backup_retention)'s option of the same name.
        type: int
        default: 7
      weekly:
        description: As M(backup_retention)'s option of the same name.
        type: int
        default: 0
      monthly:
        description: As M(backup_retention)'s option of the same name.
        type: int
        default: 0
      min_keep:
        description: As M(backup_retention)'s option of the same name.
        type: int
        default: 7
      pre_change_days:
        description: As M(backup_retention)'s option of the same name.
        type: int
        default: 30
      pre_change_min_keep:
        description: As M(backup_retention)'s option of the same name.
        type: int
        default: 3
      offsite_targets:
        description: As M(backup_retention)'s option of the same name.
        type: list
        elements: dict
        default: []
extends_documentation_fragment:
  - datasafe
attributes:
  check_mode:
    support: full
    description:
      - Checks that the database answers and reports the name the backup would get; writes nothing,
        takes no lock, and reports RV(changed) true because a real run would write a backup.
  diff_mode:
    support: none
notes:
  - Requires the C(docker) CLI on the host (and C(zstd) for zstd, C(pigz) or C(gzip) for host-side gzip).
seealso:
  - module: backup_retention
"""

EXAMPLES = r"""
- name: Back up before the update
  pg_backup:
    container: lms-postgres
    database: lms_slncity
    user: lms_user
    backup_dir: ~/backups
    tables: [users, patients, visits, test_results, invoices]
    kind: pre-change
    label: before release 2.4
    app_dir: ~/LMS-SLNCity-V1
  register: backup

- name: Nightly zstd backup, compressed on the host
  pg_backup:
    container: lms-postgres
    database: lms_slncity
    user: lms_user
    backup_dir: /srv/backups
    kind: scheduled
    compression: zstd
    metrics_file: /var/lib/node_exporter/textfile/datasafe_backup.prom
"""

RETURN = r"""
path:
  description: Absolute path of the verified backup (in check mode, the path it would get).
  returned: always
  type: str
  sample: /home/lms/backups/lms_backup_20261123_020000.sql.gz
manifest_path:
  description: Path of its manifest.
  returned: success
  type: str
file:
  description: Base name of the backup.
  returned: always
  type: str
sha256:
  description: SHA-256 of the backup file.
  returned: success
  type: str
size:
  description: Size of the backup file in bytes.
  returned: success
  type: int
counts:
  description: Exact row count of every table in O(tables), taken in the dump's snapshot.
  returned: success
  type: dict
  sample: {"users": 10, "patients": 2000}
kind:
  description: O(kind) as given.
  returned: always
  type: str
start:
  description: When the backup started (ISO 8601 with timezone).
  returned: success
  type: str
end:
  description: When it was verified and named (ISO 8601 with timezone).
  returned: success
  type: str
duration_seconds:
  description: Wall time of the backup.
  returned: success
  type: float
checks:
  description: What was verified.
  returned: success
  type: list
  elements: str
shrink:
  description: Why the backup was flagged as far smaller than the previous one (empty when it was not).
  returned: success
  type: list
  elements: str
previous:
  description: The newest good backup of the database before this one (compared for shrinkage), or null.
  returned: always
  type: str
manifest:
  description: The whole manifest as written.
  returned: success
  type: dict
removed_partials:
  description: Temporary files of earlier runs that died (never backups), removed under the lock.
  returned: success
  type: list
  elements: str
guard_ok:
  description:
    - With O(guard_check), true when the guard's check passed (intact, or not installed and not
      O(guard_required)) and its metrics, if asked for, were written; false otherwise (the
      M(db_guard) task then checks again and fails naming what was changed).
  returned: success, with O(guard_check)
  type: bool
guard_problem:
  description:
    - With O(guard_check), why RV(guard_ok) is false (the check's failure, or the error reading it).
  returned: success, with O(guard_check), when RV(guard_ok) is false
  type: str
archiving_enabled:
  description:
    - With O(archiving_probe), whether the server archives WAL (C(archive_mode) on or always);
      null when C(pg_stat_archiver) could not be read (M(continuous_status) then reads it itself).
  returned: success, with O(archiving_probe)
  type: bool
retention:
  description:
    - With O(retention), what pruning did, as M(backup_retention) returns it (C(remove), C(keep),
      C(ignored), C(newest_verified), C(freed_bytes), C(held_for_offsite), C(held_bytes), C(msg)).
  returned: success, with O(retention)
  type: dict
stage:
  description: The stage that failed.
  returned: failure
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import backup, backup_run, modulekit, runner, specs


def main():
    module = AnsibleModule(
        argument_spec=specs.spec(
            specs.CONNECTION,
            backup_dir=dict(type="path", required=True),
            tables=dict(type="list", elements="str", default=[]),
            kind=dict(type="str", choices=["manual", "scheduled", "pre-change"], default="manual"),
            label=dict(type="str", default=""),
            prefix=dict(type="str", default="lms_backup"),
            pre_change_prefix=dict(type="str", default="BEFORE_UPDATE"),
            format=dict(type="str", choices=list(backup.FORMATS), default="plain"),
            compression=dict(type="str", choices=list(backup.COMPRESSIONS), default="gzip"),
            compress_level=dict(type="int"),
            compress_on=dict(type="str", choices=["auto", "container", "host"], default="auto"),
            container_compressor=dict(type="str", choices=list(backup.CONTAINER_COMPRESSORS), default="auto"),
            split=dict(type="str", choices=list(backup.SPLIT_CHOICES), default="auto"),
            app_dir=dict(type="path"),
            fail_on_shrink=dict(type="bool", default=False),
            shrink_ratio=dict(type="float", default=0.5),
            metrics_file=dict(type="path"),
            change_log=dict(type="path"),
            lock_timeout=dict(type="int", default=0),
            lock_wait_timeout=dict(type="int", default=120),
            nice=dict(type="int", default=0),
            roles=dict(type="bool", default=True),
            role_auth=dict(type="str", choices=["hashes", "none"], default="hashes"),
            guard_check=dict(type="bool", default=False),
            guard_required=dict(type="bool", default=False),
            guard_metrics_file=dict(type="path"),
            archiving_probe=dict(type="bool", default=False),
            retention=dict(type="dict", options=specs.spec(specs.RETENTION_POLICY)),
        ),
        supports_check_mode=True,
    )
    modulekit.finish(
        module,
        lambda: backup_run.execute(module.params, runner.for_module(module), module.check_mode, module.warn),
        None,
        (backup_run.BackupFailed,),
    )


if __name__ == "__main__":
    main()
