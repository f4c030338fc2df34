"""Roles beside every backup: the parser and plan (pure logic), then real servers.

A role dump of one real server is re-created on a second, fresh one: the missing roles arrive
with their attributes, settings, comments, memberships and password hashes; a role that already
exists there is never altered, and what was left alone is reported.
"""

import os

import pytest
from ansible.module_utils.datasafe import backup, container, roles
from pgbed import ThrowawayPostgres
from recovery_helpers import RICH_SCHEMA

# What pg_dumpall --roles-only writes (15.14 and later wrap it in \\restrict), with a quoted
# role name, a password hash holding ';' and '$', a comment with ';', a per-database setting.
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "roles_sample.sql"), encoding="utf-8") as _handle:
    SAMPLE = _handle.read()


def test_parse_reads_every_role_statement_in_order():
    parsed = roles.parse(SAMPLE)
    assert parsed["order"] == ['Odd "Role"', "app_reader", "lms_user"]
    assert parsed["roles"]["app_reader"][1].endswith("PASSWORD 'SCRAM-SHA-256$4096:abc;def$x:y'")
    assert parsed["roles"]["app_reader"][2] == "COMMENT ON ROLE app_reader IS 'reads; only'"
    assert parsed["grants"][0]["sql"] == 'GRANT "app_reader" TO "Odd ""Role"""'
    assert len(parsed["settings"]) == 3


def test_plan_creates_only_missing_roles_and_never_alters_existing_ones():
    decided = roles.plan(roles.parse(SAMPLE), existing={"lms_user", "postgres"}, databases={"postgres"})
    assert decided["create"] == ['Odd "Role"', "app_reader"]
    assert decided["existing"] == ["lms_user"]
    assert not any("lms_user" in s and s.startswith("ALTER") for s in decided["sql"])
    assert 'GRANT "app_reader" TO "Odd ""Role"""' in decided["sql"]
    skipped = " | ".join(decided["skipped"])
    assert 'GRANT "app_reader" TO "lms_user" (role "lms_user" exists and is never altered)' in skipped
    assert "IN DATABASE lms_slncity SET work_mem" in skipped  # that database does not exist yet


@pytest.mark.parametrize(
    "text, problem",
    [
        (SAMPLE.replace("-- PostgreSQL database cluster dump complete", ""), "incomplete"),
        (SAMPLE.replace("CREATE ROLE lms_user;", "CREATE TABLE lms_user (id int);"), "unexpected statement"),
        (SAMPLE.replace("SET client_encoding", "\\! id\nSET client_encoding"), "unexpected psql command"),
        (SAMPLE.replace("CREATE ROLE app_reader;\n", ""), "before creating it"),
    ],
)
def test_a_roles_file_that_is_not_a_plain_role_dump_is_refused(text, problem):
    with pytest.raises(roles.RolesError, match=problem):
        roles.parse(text)


@pytest.fixture(scope="module")
def source():
    pg = ThrowawayPostgres()
    try:
        pg.start().seed(scale=1)
        with open(RICH_SCHEMA, encoding="utf-8") as handle:
            pg.psql(handle.read())
        yield pg
    finally:
        pg.remove()


def role_facts(pg, name):
    sql = (
        "SELECT r.rolcanlogin, r.rolconnlimit, r.rolconfig::text, md5(coalesce(a.rolpassword, '')), "
        "shobj_description(r.oid, 'pg_authid') FROM pg_roles r JOIN pg_authid a ON a.oid = r.oid "
        "WHERE r.rolname = '%s'" % name
    )
    return pg.psql(sql).stdout.strip()


def test_roles_dumped_with_a_backup_are_created_on_a_fresh_server_and_existing_ones_left_alone(source, tmp_path):
    path = str(tmp_path / "b.sql.gz.roles")
    block = backup.dump_roles({"container": source.container, "user": source.user}, path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert {"lab_reporter", "lab_readers", "Lab Auditor"} <= set(block["roles"])
    fresh = ThrowawayPostgres()
    try:
        fresh.start()
        fresh.psql("CREATE ROLE lab_readers NOLOGIN CONNECTION LIMIT 1")  # exists already, differently
        done = roles.ensure(fresh.run, fresh.container, fresh.user, path, block["sha256"], block["size"])
        assert set(done["created"]) == {"lab_reporter", "Lab Auditor"}
        assert set(done["existing"]) >= {"lab_readers", "lms_user"}
        for name in ("lab_reporter", "Lab Auditor"):
            assert role_facts(fresh, name) == role_facts(source, name)
        assert "reporting login" in role_facts(fresh, "lab_reporter")  # the comment travelled
        assert fresh.psql("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'lab_readers'").stdout.strip() == "1"
        member = (
            "SELECT count(*) FROM pg_auth_members WHERE roleid = 'lab_readers'::regrole "
            "AND member = 'lab_reporter'::regrole"
        )
        assert fresh.psql(member).stdout.strip() == "1"  # membership OF a role it created
        # a second run creates nothing: everything exists
        again = roles.ensure(fresh.run, fresh.container, fresh.user, path, block["sha256"], block["size"])
        assert again["created"] == []
    finally:
        fresh.remove()


def test_a_roles_file_that_changed_since_its_manifest_is_refused_and_nothing_is_created(source, tmp_path):
    path = str(tmp_path / "b.sql.gz.roles")
    block = backup.dump_roles({"container": source.container, "user": source.user}, path)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("\n")
    with pytest.raises(roles.RolesError, match="size|sha256"):
        roles.ensure(source.run, source.container, source.user, path, block["sha256"], block["size"])
    assert container.query(source.run, source.container, "postgres", source.user, "SELECT 1") == [["1"]]
