#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Start compose services and wait until they answer (pg_isready, the health URL)."""

DOCUMENTATION = r"""
---
module: stack_start
short_description: Start a compose stack database first, prove its rows, then the application
description:
  - Runs C(docker compose up --detach --no-build --pull never) and polls until the services
    answer, and returns how long that took. It never builds, never pulls, never stops and never
    removes anything; images must be present (the safe update builds them first).
  - With O(database), the database service starts first and alone. When its server accepts
    connections (C(pg_isready) inside the container) and O(database.tables) are given, their
    rows are counted exactly in one snapshot and compared with O(database.compare_to); if a
    table lost rows the module fails B(before the application starts), so a new version never
    runs against data that is already short.
  - Then O(services) start (every service when empty) and, with O(wait_url), the module waits
    until GET on it answers 200.
  - Readiness is asked of the services themselves every O(wait_interval) seconds, not read from
    Docker's C(healthy), which lags by up to a healthcheck interval; on a restart every such
    second is downtime. A started container that exits, vanishes or turns C(unhealthy) while
    it is waited for ends the wait at once, with its log tail, instead of running out
    O(wait_timeout).
  - With O(verify), the module ends with the stack check of C(stack_info), the protocol's check
    after any change. Every service of the project must run and, where it has a healthcheck, be
    healthy, and the database's data must be on its named volume; a problem fails the module,
    after the start. It runs in the same module run as the start, so no task boundary comes
    between a serving application and its verified stack.
version_added: "0.2.0"
author: datasafe maintainers
options:
  database:
    description: The PostgreSQL service to start first and prove before anything else starts.
    type: dict
    suboptions:
      service:
        description: Its compose service name.
        type: str
        required: true
      container:
        description: Its container name.
        type: str
        required: true
      user:
        description: Role for C(pg_isready) and the counts.
        type: str
        required: true
      name:
        description: The database to wait for and count in.
        type: str
        required: true
      tables:
        description: Critical tables to count once the server answers; none counts nothing.
        type: list
        elements: str
        default: []
      compare_to:
        description:
          - An earlier snapshot (RV(counts) of this module or of C(row_counts)). A table with
            fewer rows fails the module before the application starts.
        type: dict
      label:
        description: A name for this count (for example C(after down)), repeated in messages.
        type: str
        default: after start
  services:
    description:
      - Services to start (after O(database) when given); empty starts every service.
      - Naming them lets O(dependencies=false) skip compose's wait for a dependency that was
        already proven here.
    type: list
    elements: str
    default: []
  exclude_services:
    description:
      - With O(services) empty, start every service of the compose files except these, by name
        (read with C(docker compose config --services)), for example every service but a
        database that is already up.
    type: list
    elements: str
    default: []
  dependencies:
    description:
      - With V(false), C(--no-deps) for O(services). It is for a caller that checked the
        dependencies itself (O(database) above), so compose does not wait again for Docker's
        C(healthy) (it polls every 0.5 s).
    type: bool
    default: true
  wait_url:
    description: Wait until GET on this http(s) URL answers 200.
    type: str
  wait_timeout:
    description: Seconds to wait for the database and, separately, for O(wait_url).
    type: int
    default: 120
  wait_interval:
    description: Seconds between two polls.
    type: float
    default: 0.1
  verify:
    description:
      - After the start (and O(wait_url)), check the stack exactly as C(stack_info) does with
        O(ignore:require_running=true); see that module for each check. Its result is RV(stack);
        any problem fails the module.
    type: dict
    suboptions:
      db_service:
        description: The compose service that runs PostgreSQL.
        type: str
        default: postgres
      volume:
        description: The volume's key in the compose file; its docker name is C(<project_name>_<volume>).
        type: str
        default: postgres_data
      volume_name:
        description: The full docker name of the volume, for external volumes; overrides O(verify.volume).
        type: str
      data_path:
        description: Where the database keeps its data inside the container.
        type: str
        default: /var/lib/postgresql/data
      wait_healthy:
        description:
          - Seconds to wait while a running service's healthcheck still says C(starting), running
            that healthcheck meanwhile (C(stack_info)'s O(ignore:wait_healthy)). V(0) judges at once.
        type: int
        default: 0
extends_documentation_fragment:
  - datasafe.compose
attributes:
  check_mode:
    support: full
    description: In check mode nothing runs; the commands that would run are returned.
  diff_mode:
    support: none
seealso:
  - module: community.docker.docker_compose_v2
"""

EXAMPLES = r"""
- name: Start the database, prove no table lost a row, then start the application
  stack_start:
    project_src: /srv/lms
    project_name: lms
    files: [docker-compose.prod.yml]
    database:
      service: postgres
      container: lms-postgres
      user: lms_user
      name: lms_slncity
      tables: [users, patients, visits, test_results, invoices]
      compare_to: "{{ counts_before.counts }}"
      label: after down
    services: [backend]
    dependencies: false
    wait_url: http://127.0.0.1:5002/health
  register: started

- name: Start every service but the running database, wait for health, then verify the stack
  stack_start:
    project_src: /srv/lms
    project_name: lms
    files: [docker-compose.prod.yml]
    exclude_services: [postgres]
    dependencies: false
    wait_url: http://127.0.0.1:5002/health
    verify:
      db_service: postgres
      wait_healthy: 120
  register: started
"""

RETURN = r"""
commands:
  description: The compose commands that ran (or would run, in check mode), in order.
  returned: always
  type: list
  elements: list
  sample: [[docker, compose, -p, lms, --project-directory, /srv/lms, -f, /srv/lms/docker-compose.prod.yml, up,
            --detach, --no-build, --pull, never, postgres]]
waited:
  description: Seconds from the end of each C(up) until the service answered.
  returned: success
  type: dict
  sample: {"postgres": 0.31, "url": 0.52}
counts:
  description: Exact row count of every table in O(database.tables), once the database answered.
  returned: when O(database.tables) were counted
  type: dict
  sample: {"users": 10, "patients": 2000}
total:
  description: Sum of RV(counts).
  returned: when O(database.tables) were counted
  type: int
  sample: 2010
problems:
  description: Every table that lost rows against O(database.compare_to); the module failed if any.
  returned: always
  type: list
  elements: dict
containers:
  description: The containers that were started and watched while waiting.
  returned: success
  type: list
  elements: str
  sample: [lms-postgres, lms-backend]
stack:
  description:
    - The stack check of O(verify), as C(stack_info) returns it (C(services), C(volume),
      C(expected_volume), C(data_pg_version), C(problems)); also returned when it failed.
  returned: when O(verify) was given and the start succeeded
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.datasafe import modulekit, runner, specs, stack


def main():
    module = AnsibleModule(
        argument_spec=specs.spec(
            specs.COMPOSE,
            database=dict(
                type="dict",
                options=dict(
                    service=dict(type="str", required=True),
                    container=dict(type="str", required=True),
                    user=dict(type="str", required=True),
                    name=dict(type="str", required=True),
                    tables=dict(type="list", elements="str", default=[]),
                    compare_to=dict(type="dict"),
                    label=dict(type="str", default="after start"),
                ),
            ),
            services=dict(type="list", elements="str", default=[]),
            exclude_services=dict(type="list", elements="str", default=[]),
            dependencies=dict(type="bool", default=True),
            wait_url=dict(type="str"),
            wait_timeout=dict(type="int", default=120),
            wait_interval=dict(type="float", default=0.1),
            verify=dict(
                type="dict",
                options=dict(
                    db_service=dict(type="str", default="postgres"),
                    volume=dict(type="str", default="postgres_data"),
                    volume_name=dict(type="str"),
                    data_path=dict(type="str", default=stack.PGDATA),
                    wait_healthy=dict(type="int", default=0),
                ),
            ),
        ),
        supports_check_mode=True,
    )
    p = module.params
    modulekit.finish(
        module,
        lambda: stack.start(
            runner.for_module(module),
            p["project_name"],
            p["files"],
            p["project_src"],
            services=p["services"],
            exclude_services=p["exclude_services"],
            dependencies=p["dependencies"],
            database=p["database"],
            wait_url=p["wait_url"],
            wait_timeout=p["wait_timeout"],
            wait_interval=p["wait_interval"],
            verify=p["verify"],
            check_mode=module.check_mode,
        ),
        "stack_start",
        (ValueError, stack.StackError),
        changed=False,
    )


if __name__ == "__main__":
    main()
