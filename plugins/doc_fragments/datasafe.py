# -*- coding: utf-8 -*-
"""Documentation of the options several datasafe modules share, written once.

A module lists what it takes from here under ``extends_documentation_fragment``:

- ``datasafe`` (DOCUMENTATION): the database in its container, C(container) / C(database) / C(user);
- ``datasafe.breakglass``: the guards' break-glass and deny-rule options and the verdict their action
  plugins hand them (safe_sql, safe_command);
- ``datasafe.offsite``: what every off-site target takes (offsite_copy, offsite_s3);
- ``datasafe.compose``: the compose project a module starts or stops (stack_start, stack_stop);
- ``datasafe.stack``: the compose stack a module reads (db_preflight, continuous_plan);
- ``datasafe.retention_policy``: the retention policy (backup_retention; pg_backup's ``retention``
  takes the same keys, documented there as suboptions);
- ``datasafe.read_only``: the attributes of a module that only reads (check mode: full, no diff).

The argument specs of ``datasafe`` and ``datasafe.stack`` live once too, in
``module_utils/datasafe/specs.py`` (``CONNECTION``, ``STACK``).

ansible.cfg's ``doc_fragment_plugins`` points ansible-doc here. A module may repeat an option to
say what it means there: its own keys (usually just ``description``) win over the fragment's, the
rest (type, required, default) stays here. tests/test_module_docs.py holds every module's
documented options, fragments included, equal to its argument_spec.

ansible-core merges fragments into DOCUMENTATION only, never into RETURN: the return values the
off-site modules share are kept alike by that test instead.
"""


class ModuleDocFragment:
    # The database datasafe works on, reached with docker exec over the container's local socket.
    DOCUMENTATION = r"""
options:
  container:
    description: Name of the running PostgreSQL container (reached with C(docker exec), never over the network).
    type: str
    required: true
  database:
    description: The database to work in.
    type: str
    required: true
  user:
    description:
      - Database role C(psql) connects as, over the container's local socket; no password is
        passed (none appears in argv, output or logs).
    type: str
    required: true
"""

    # The guards' way past a refusal: explicit, with a reason, only with a fresh verified backup.
    BREAKGLASS = r"""
options:
  deny_rules:
    description:
      - Project deny rules added to the built-in ones (which cannot be removed), usually from
        the inventory variable C(datasafe_guard_deny_rules). Each is a mapping with C(id),
        C(regex), C(reason), C(instead) and C(applies_to).
    type: list
    elements: dict
    default: []
  allow_destructive:
    description:
      - Break-glass. Run what the guard refuses, only if a verified backup younger than
        O(breakglass_max_age) minutes exists in O(backup_dir). Requires O(reason).
    type: bool
    default: false
  reason:
    description: Why the destruction is necessary; written to the change log. Required with O(allow_destructive).
    type: str
  backup_dir:
    description: Where backups and their C(<file>.json) manifests are.
    type: path
    default: ~/backups
  breakglass_max_age:
    description: Age limit in minutes of the verified backup break-glass requires.
    type: int
    default: 15
  change_log:
    description: The human change log break-glass uses are appended to.
    type: path
    default: ~/change-log.txt
  change_log_json:
    description: The JSON-lines change log break-glass uses are appended to.
    type: path
    default: ~/change-log.jsonl
  _datasafe_verdict:
    description:
      - Internal, set only by the module's action plugin, never by a task (the plugin refuses a
        task that sets it). The guard's verdict reached on the controller, bound by a SHA-256 to
        the exact SQL or command judged; the module refuses to run anything else under it.
      - Without it (the action plugin not in use) the module judges on the managed host and
        refuses, running nothing, when pglast or bashlex is missing there.
    type: dict
"""

    # Layer 4: what goes off-site, how it is encrypted, where it is recorded.
    OFFSITE = r"""
options:
  backups:
    description: Backups to send (backup files or their C(.json) manifests). Each must be verified, or the task fails.
    type: list
    elements: path
    default: []
  backup_dir:
    description: Also send every verified backup in this directory that is not yet at the target.
    type: path
  database:
    description: With O(backup_dir), only backups of this database.
    type: str
  encrypt:
    description: Encrypt every payload with C(age) before it leaves the host; the plaintext is never sent.
    type: bool
    default: false
  age_recipients:
    description: age recipients (public keys C(age1...) or ssh public keys). Never logged.
    type: list
    elements: str
    default: []
  staging_dir:
    description:
      - Private (0700) directory for encrypted files before they are sent.
      - Default C(<backup_dir>/.offsite-staging).
    type: path
  metrics_file:
    description: Prometheus textfile to update with this target's samples (e.g. C(.../datasafe_offsite.prom)).
    type: path
  change_log:
    description: The protocol's change log (C(~/change-log.txt)); JSON lines go to C(change-log.jsonl) beside it.
    type: path
"""

    # The compose project, as the stack engine builds its command line (compose.compose_argv).
    COMPOSE = r"""
options:
  project_src:
    description: Directory of the compose project (its files are relative to it).
    type: path
    required: true
  project_name:
    description: Compose project name.
    type: str
    required: true
  files:
    description: Compose files, relative to O(project_src) or absolute.
    type: list
    elements: str
    default: [docker-compose.yml]
notes:
  - The compose variables (project name overrides, ports, image tags) come from the task's
    C(environment), as for M(community.docker.docker_compose_v2).
"""

    # The compose stack as datasafe reads it (module_utils/datasafe/specs.py STACK).
    STACK = r"""
options:
  compose_dir:
    description: The application's checkout holding the compose files.
    type: path
    required: true
  compose_files:
    description: The stack's own compose files, relative to O(compose_dir) or absolute.
    type: list
    elements: str
    required: true
  project:
    description: Compose project name.
    type: str
    required: true
  compose_env:
    description: Environment for C(docker compose) (ports, names, image variables).
    type: dict
    default: {}
  db_service:
    description: The compose service running PostgreSQL.
    type: str
    default: postgres
"""

    # Which pgBackRest repository a recovery reads (specs.PGBACKREST_REPO).
    PGBACKREST_REPO = r"""
options:
  repo:
    description:
      - The repository to recover from. V(1) the local directory O(repo_dir) (mounted read-only);
        V(2) the off-site one on S3 alone (the server-loss path, the local directory is not even
        mounted; the throwaway containers get the host network to reach S3).
    type: int
    choices: [1, 2]
    default: 1
  repo_env:
    description:
      - The S3 repository's secrets as PGBACKREST_* variables (C(PGBACKREST_REPO2_S3_KEY),
        C(PGBACKREST_REPO2_S3_KEY_SECRET), C(PGBACKREST_REPO2_CIPHER_PASS)); they reach the
        throwaway containers through the environment by name, never argv or a file.
      - When empty, they are read from the environment of the running live database container
        (O(container) of continuous_drill, O(live_container) of continuous_recover).
    type: dict
    default: {}
"""

    # The retention policy (backup_retention); specs.RETENTION_POLICY.
    RETENTION_POLICY = r"""
options:
  days:
    description: Keep scheduled and manual backups younger than this many days.
    type: int
    default: 7
  weekly:
    description: Also keep the newest backup of each of the last N ISO weeks (0 disables the tier).
    type: int
    default: 0
  monthly:
    description: Also keep the newest backup of each of the last N calendar months (0 disables the tier).
    type: int
    default: 0
  min_keep:
    description: Never keep fewer than this many scheduled/manual backups, whatever their age.
    type: int
    default: 7
  pre_change_days:
    description: Keep pre-change backups younger than this many days.
    type: int
    default: 30
  pre_change_min_keep:
    description: Never keep fewer than this many pre-change backups.
    type: int
    default: 3
  offsite_targets:
    description:
      - The off-site targets (the items of C(datasafe_offsite_targets)). While any is set, a backup
        without a verified copy at every one of them (per the off-site ledger
        C(<backup_dir>/offsite-ledger.json), which the off-site modules write) is never removed,
        whatever its age; it is listed in RV(held_for_offsite) with the disk it holds.
    type: list
    elements: dict
    default: []
"""

    # A module that only reads: check mode runs it exactly as a real run.
    READ_ONLY = r"""
attributes:
  check_mode:
    support: full
    description: It only reads.
  diff_mode:
    support: none
"""
