# -*- coding: utf-8 -*-
"""The argument specs several modules share, written once (their documentation: plugins/doc_fragments).

A module builds its ``argument_spec`` with :func:`spec`: the shared parts it takes, then its own
options (which may override a shared one, e.g. to make it optional)::

    argument_spec=specs.spec(specs.CONNECTION, action=dict(type="str", required=True))

Each shared part has the doc fragment of the same name, and tests/test_module_docs.py holds the two
equal, so documentation and spec never drift apart.

Every shared spec lives here: ``CONNECTION``, ``STACK``, ``COMPOSE`` (the project a module starts
or stops), ``BREAKGLASS`` (the guards' way past a refusal, with ``BREAKGLASS_REQUIRED_IF``),
``OFFSITE`` (what every off-site target takes) and ``RETENTION_POLICY`` (backup_retention's policy,
which pg_backup takes as its ``retention`` to prune in its own run).
"""

import copy

# The database in its container (doc fragment ``datasafe``).
CONNECTION = dict(
    container=dict(type="str", required=True),
    database=dict(type="str", required=True),
    user=dict(type="str", required=True),
)

# The compose stack as datasafe reads it (doc fragment ``datasafe.stack``).
STACK = dict(
    compose_dir=dict(type="path", required=True),
    compose_files=dict(type="list", elements="str", required=True),
    project=dict(type="str", required=True),
    compose_env=dict(type="dict", default={}),
    db_service=dict(type="str", default="postgres"),
)

# The compose project as stack_start and stack_stop take it (doc fragment ``datasafe.compose``).
COMPOSE = dict(
    project_src=dict(type="path", required=True),
    project_name=dict(type="str", required=True),
    files=dict(type="list", elements="str", default=["docker-compose.yml"]),
)

# The guards' break-glass and deny rules, safe_sql and safe_command (doc fragment ``datasafe.breakglass``).
BREAKGLASS = dict(
    deny_rules=dict(type="list", elements="dict", default=[]),
    allow_destructive=dict(type="bool", default=False),
    reason=dict(type="str"),
    backup_dir=dict(type="path", default="~/backups"),
    breakglass_max_age=dict(type="int", default=15),
    change_log=dict(type="path", default="~/change-log.txt"),
    change_log_json=dict(type="path", default="~/change-log.jsonl"),
    # internal: the verdict the guards' action plugins reach on the controller (module_utils/datasafe/verdict.py)
    _datasafe_verdict=dict(type="dict"),
)
BREAKGLASS_REQUIRED_IF = [("allow_destructive", True, ["reason"])]

# What both off-site modules take; each adds its target's own options (doc fragment ``datasafe.offsite``).
OFFSITE = dict(
    backups=dict(type="list", elements="path", default=[]),
    backup_dir=dict(type="path"),
    database=dict(type="str"),
    encrypt=dict(type="bool", default=False),
    age_recipients=dict(type="list", elements="str", default=[], no_log=True),
    staging_dir=dict(type="path"),
    metrics_file=dict(type="path"),
    change_log=dict(type="path"),
)

# The retention policy (doc fragment ``datasafe.retention_policy``): backup_retention's options, and
# the suboptions of pg_backup's ``retention`` (pruning in the backup's own run, one module run fewer).
RETENTION_POLICY = dict(
    days=dict(type="int", default=7),
    weekly=dict(type="int", default=0),
    monthly=dict(type="int", default=0),
    min_keep=dict(type="int", default=7),
    pre_change_days=dict(type="int", default=30),
    pre_change_min_keep=dict(type="int", default=3),
    offsite_targets=dict(type="list", elements="dict", default=[]),
)

# Which pgBackRest repository a recovery reads, and the S3 one's secrets (doc fragment
# ``datasafe.pgbackrest_repo``): continuous_recover and continuous_drill.
PGBACKREST_REPO = dict(
    repo=dict(type="int", choices=[1, 2], default=1),
    repo_env=dict(type="dict", default={}, no_log=True),
)


def spec(*parts, **own):
    """One argument spec: copies of the shared ``parts`` in order, then the module's ``own`` options."""
    merged = {}
    for part in parts + (own,):
        merged.update(copy.deepcopy(part))
    return merged
