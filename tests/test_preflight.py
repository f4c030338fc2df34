"""db_preflight and its engine (stack.preflight_task): before a change stops the database, the
compose files' PostgreSQL must open the data directory and the backup must fit.

The problems' wording is tested from given figures; the module reads a real compose file with
real ``docker compose config``, inspects the real image and measures a real throwaway database.
"""

import os
import uuid

import pytest
from ansible.module_utils.datasafe import stack
from harness import run_module
from pgbed import PG_IMAGE


def test_the_same_major_version_is_no_problem():
    assert stack.version_problem("postgres:15", "15", "15\n") is None


def test_another_major_version_says_the_server_would_not_start_and_how_to_upgrade():
    assert stack.version_problem("postgres:16", "16", "15") == (
        "the compose files run postgres:16 (PostgreSQL 16) but the data directory was made by PostgreSQL 15: "
        "it would not start after the old server stops. Upgrade with pg_upgrade or a dump and restore, "
        "not with an update"
    )


def test_a_backup_that_fits_is_no_problem_and_one_that_does_not_names_the_figures():
    mib = 1 << 20
    assert stack.space_problem(100 * mib, 100 * mib, 1.0, "/b") is None
    assert stack.space_problem(100 * mib, 40 * mib, 2.5, "/b") is None
    assert stack.space_problem(99 * mib, 40 * mib, 2.5, "/b") == (
        "only 99 MiB free in /b for a backup of a 40 MiB database (need 100 MiB): free space first; "
        "datasafe never deletes backups to make room"
    )


def test_a_backup_directory_not_made_yet_is_measured_where_it_will_be(tmp_path):
    assert stack.nearest_existing(str(tmp_path / "backups" / "lms")) == str(tmp_path)
    assert stack.nearest_existing(str(tmp_path)) == str(tmp_path)


# ------------------------------------------------------------- the module: real compose, image and database


@pytest.fixture
def checkout(tmp_path):
    """A compose file giving the database service ``postgres`` an image, and the module's arguments."""

    def make(image=PG_IMAGE, **args):
        (tmp_path / "docker-compose.yml").write_text("services:\n  postgres:\n    image: %s\n" % image)
        return dict(
            dict(
                compose_dir=str(tmp_path),
                compose_files=["docker-compose.yml"],
                project="datasafe-test-preflight-%s" % uuid.uuid4().hex[:8],
                container="datasafe-test-preflight-absent",
                database="lms_slncity",
                user="lms_user",
                data_pg_version="15",
            ),
            **args,
        )

    return make


def test_the_image_the_compose_files_run_is_read_and_matches(checkout, tmp_path):
    result = run_module("db_preflight", checkout())
    assert not result["failed"] and result["problems"] == [] and result["changed"] is False
    assert (result["image"], result["image_pg_major"]) == (PG_IMAGE, "15")
    assert result["compose_files"] == [str(tmp_path / "docker-compose.yml")]
    assert result["compose_argv"][:3] == ["docker", "compose", "-p"] and "db_size_bytes" not in result


def test_an_image_of_another_major_version_refuses(checkout):
    result = run_module("db_preflight", checkout(data_pg_version="14"))
    assert result["failed"] and result["image_pg_major"] == "15"
    assert result["problems"] == [stack.version_problem(PG_IMAGE, "15", "14")]
    assert result["msg"] == "preflight: " + result["problems"][0]


def test_an_image_not_on_the_host_refuses_before_anything_is_pulled(checkout):
    result = run_module("db_preflight", checkout(image="datasafe/not-built-here:0"))
    problem = (
        "image datasafe/not-built-here:0 is not present on this host, so compose would try to pull it "
        "during 'up': build or load it before updating"
    )
    assert result["failed"] and result["problems"] == [problem] and result["msg"] == "preflight: " + problem
    assert result["image"] == "datasafe/not-built-here:0" and "image_pg_major" not in result


def test_a_database_service_the_compose_files_lack_refuses(checkout):
    result = run_module("db_preflight", checkout(db_service="db"))
    assert result["failed"] and "image" not in result
    assert result["msg"] == "preflight: the compose files define no service 'db' (they define: postgres)"
    assert result["problems"] == [result["msg"][len("preflight: ") :]]


def test_a_database_that_cannot_be_measured_refuses_naming_the_stage(checkout, tmp_path):
    result = run_module("db_preflight", checkout(backup_dir=str(tmp_path / "backups")))
    assert result["failed"] and result["image_pg_major"] == "15" and "db_size_bytes" not in result
    assert result["msg"].startswith("preflight: measure the database failed (exit ")
    assert result["problems"] == [result["msg"][len("preflight: ") :]]


def test_the_database_is_measured_and_a_backup_that_does_not_fit_refuses(checkout, tmp_path, throwaway_pg):
    args = checkout(container=throwaway_pg.container, backup_dir=str(tmp_path / "backups" / "lms"))
    result = run_module("db_preflight", args)
    assert not result["failed"] and result["problems"] == []
    assert result["db_size_bytes"] > 0 and result["free_bytes"] > 0
    assert not os.path.exists(tmp_path / "backups"), "a preflight only reads"

    result = run_module("db_preflight", dict(args, data_pg_version="14", space_factor=1e12))
    assert result["failed"]
    assert result["problems"] == [
        stack.version_problem(PG_IMAGE, "15", "14"),
        stack.space_problem(result["free_bytes"], result["db_size_bytes"], 1e12, str(tmp_path)),
    ]
    assert result["msg"] == "preflight: " + "; ".join(result["problems"])
