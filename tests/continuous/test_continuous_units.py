"""Continuous recovery's pure decisions (module_utils/datasafe/continuous.py, compose.py).

The real servers, real pgBackRest and real playbook runs are in molecule/continuous; these pin
the logic those runs rely on: the override is deterministic (a second run changes nothing), the
user's command is kept, targets are validated before anything is created, health names causes.
"""

import datetime
import json
import os

import pytest
from ansible.module_utils.datasafe import compose, continuous

STANZA = "lms"


def test_the_archive_settings_are_added_to_the_users_command_and_win_over_earlier_ones():
    command = ["postgres", "-c", "listen_addresses=127.0.0.1", "-c", "archive_mode=off"]
    out = continuous.with_settings(command, continuous.server_settings(STANZA, 60))
    assert out[:3] == ["postgres", "-c", "listen_addresses=127.0.0.1"]
    assert "archive_mode=off" not in out
    assert out[-8:] == [
        "-c",
        "wal_level=replica",
        "-c",
        "archive_mode=on",
        "-c",
        "archive_command=pgbackrest --stanza=lms archive-push %p",
        "-c",
        "archive_timeout=60s",
    ]
    # rendering its own output again changes nothing
    assert continuous.with_settings(out, continuous.server_settings(STANZA, 60)) == out


def test_an_image_default_command_becomes_postgres_with_the_settings():
    assert continuous.with_settings(None, [("archive_mode", "on")]) == ["postgres", "-c", "archive_mode=on"]
    assert continuous.with_settings(["-c", "fsync=on"], [])[:1] == ["postgres"]


@pytest.mark.parametrize("timeout", [0, 61, 3600])
def test_an_archive_timeout_over_a_minute_is_refused(timeout):
    with pytest.raises(continuous.ContinuousError, match="outside 1..60"):
        continuous.server_settings(STANZA, timeout)


def test_the_override_is_deterministic_and_mounts_repository_and_configuration():
    args = ("postgres", "datasafe-continuous/lms-db:abc", ["postgres"], "/root/backups-pgbackrest", "/root/.ds/lms")
    text = continuous.render_override(*args)
    assert text == continuous.render_override(*args)
    doc = json.loads(text.split("\n", 2)[2])  # after the two comment lines; JSON is YAML
    service = doc["services"]["postgres"]
    assert service["image"] == "datasafe-continuous/lms-db:abc"
    assert {"type": "bind", "source": "/root/backups-pgbackrest", "target": "/var/lib/pgbackrest"} in service["volumes"]
    assert any(v["target"] == "/etc/pgbackrest" and v["read_only"] for v in service["volumes"])


def test_the_configuration_keeps_secrets_out_and_refuses_no_retention():
    conf = continuous.render_conf(
        STANZA, 5432, "lms_user", 2, repo2={"bucket": "b", "endpoint": "s3.example.invalid", "path": "/lms"}
    )
    assert "repo1-retention-full=2" in conf and "repo2-cipher-type=aes-256-cbc" in conf
    assert "key" not in conf.replace("cipher", "") and "pass" not in conf
    assert "pg1-path=/var/lib/postgresql/data" in conf
    assert "pg1-path=/var/lib/postgresql/18/docker" in continuous.render_conf(
        STANZA, 5432, "u", 1, pgdata="/var/lib/postgresql/18/docker"
    )
    with pytest.raises(continuous.ContinuousError, match="at least 1"):
        continuous.render_conf(STANZA, 5432, "u", 0)


def test_image_tags_follow_the_base_image_and_the_dockerfile():
    a = continuous.image_tag("My Stack", "sha256:1", "FROM x")
    assert a.startswith("datasafe-continuous/my-stack-db:")
    assert a == continuous.image_tag("My Stack", "sha256:1", "FROM x")
    assert a != continuous.image_tag("My Stack", "sha256:2", "FROM x")


def test_targets_are_validated_before_anything_is_created():
    assert continuous.target_options("latest") == ["--type=default"]
    assert continuous.target_options("xid", "1234") == ["--type=xid", "--target=1234", "--target-action=promote"]
    assert "--target-exclusive" in continuous.target_options("lsn", "0/5000000", inclusive=False)
    for kind, value, message in [
        ("time", "2999-01-01 00:00:00+00", "in the future"),
        ("time", "2026-01-01 00:00:00", "no zone"),
        ("time", "yesterday", "not a time"),
        ("xid", "12a", "not a number"),
        ("name", "x; DROP", "not one datasafe creates"),
        ("name", "", "needs a value"),
        ("when", "x", "use one of"),
    ]:
        with pytest.raises(continuous.ContinuousError, match=message):
            continuous.target_options(kind, value)


def test_a_time_target_keeps_its_zone():
    now = datetime.datetime(2026, 12, 1, 16, 0, tzinfo=datetime.timezone.utc)
    assert continuous.parse_target_time("2026-12-01 17:59:00+02", now) == "2026-12-01 17:59:00+02:00"


def test_wal_file_names_from_lsns():
    assert continuous.lsn_segment("0/5008460", 1) == "000000010000000000000005"
    assert continuous.lsn_segment("1/FF000000", 2) == "0000000200000001000000FF"


def healthy_archiver(**changes):
    arch = dict(
        archive_mode="on",
        archive_command=continuous.archive_command(STANZA),
        failing=False,
        last_archived_age_seconds=20,
        last_failed_wal=None,
        last_failed_age_seconds=None,
        ready_segments=0,
        wal_bytes=64 << 20,
    )
    arch.update(changes)
    return arch


def test_health_names_each_problem_and_its_fix():
    summary = {"count": 1, "full": {"age_seconds": 3600, "stop": 1}}
    assert continuous.health(healthy_archiver(), summary, STANZA, 300) == []
    off = continuous.health(healthy_archiver(archive_mode="off"), summary, STANZA, 300)
    assert len(off) == 1 and "run playbooks/continuous.yml" in off[0]
    failing = continuous.health(
        healthy_archiver(failing=True, last_failed_wal="00000001000000000000000A", ready_segments=3),
        summary,
        STANZA,
        300,
    )
    assert "FAILING" in failing[0] and "3 segment(s)" in failing[0] and "keeps running" in failing[0]
    behind = continuous.health(healthy_archiver(last_archived_age_seconds=900, ready_segments=2), summary, STANZA, 300)
    assert "900s behind" in behind[0]
    assert "no good full backup" in continuous.health(healthy_archiver(), {"count": 0}, STANZA, 300)[0]
    old = continuous.health(healthy_archiver(), {"count": 1, "full": {"age_seconds": 200000}}, STANZA, 300, 30 * 3600)
    assert "is the scheduled job running" in old[0]


def test_the_summary_takes_the_newest_good_backup_of_each_type():
    stanza_info = {
        "status": {"code": 0, "message": "ok"},
        "backup": [
            {"label": "F1", "type": "full", "timestamp": {"stop": 100}, "error": False},
            {"label": "F2", "type": "full", "timestamp": {"stop": 200}, "error": True},
            {"label": "D1", "type": "diff", "timestamp": {"stop": 300}, "error": False},
        ],
    }
    summary = continuous.backups_summary(stanza_info, now=400)
    assert summary["full"]["label"] == "F1" and summary["full"]["age_seconds"] == 300
    assert summary["diff"]["label"] == "D1" and summary["count"] == 3


def test_datasafes_override_is_added_to_every_compose_call_once_it_exists(tmp_path, monkeypatch):
    monkeypatch.setenv("DATASAFE_OVERRIDE_DIR", str(tmp_path))
    base = ["docker", "compose", "-p", "lms", "--project-directory", "/srv/app", "-f", "/srv/app/c.yml"]
    assert compose.compose_argv("lms", ["c.yml"], "/srv/app") == base
    override = tmp_path / "lms.continuous.yml"
    override.write_text("{}")
    assert compose.compose_argv("lms", ["c.yml"], "/srv/app") == base + ["-f", str(override)]
    assert compose.compose_argv("lms", ["c.yml"], "/srv/app", with_override=False) == base
    # listed already: not twice; another project: not at all
    assert compose.effective_files("lms", ["c.yml", str(override)], "/srv/app").count(str(override)) == 1
    assert compose.compose_argv("other", ["c.yml"], "/srv/app")[-1] == "/srv/app/c.yml"
    assert os.path.dirname(compose.override_path("lms")) == str(tmp_path)


def test_restore_point_names_are_safe_and_dated():
    name = continuous.restore_point_name("break glass!", when=0)
    assert name == "datasafe-break-glass--19700101T000000Z"
    with pytest.raises(continuous.ContinuousError, match="restore point name"):
        continuous.create_restore_point(None, "c", "d", "u", "bad name; select")


def _backup(label, kind, stop, repo, error=False):
    return {"label": label, "type": kind, "timestamp": {"stop": stop}, "error": error, "database": {"repo-key": repo}}


TWO_REPOS = {
    "status": {"code": 0, "message": "ok"},
    "repo": [{"key": 1, "status": {"code": 0, "message": "ok"}}, {"key": 2, "status": {"code": 2, "message": "x"}}],
    "backup": [
        _backup("20261201-020000F", "full", 1000, 1),
        _backup("20261201-020500F", "full", 1100, 2),
        _backup("20261202-020000F_20261202-020000D", "diff", 2000, 1),
        _backup("20261202-020500F_20261202-020500D", "diff", 2100, 2, error=True),
    ],
}


def test_the_summary_is_per_repository_and_its_top_level_is_repository_1():
    summary = continuous.backups_summary(TWO_REPOS, now=3000)
    assert sorted(summary["repos"]) == ["1", "2"]
    assert summary["full"]["label"] == "20261201-020000F" and summary["diff"]["stop"] == 2000
    two = summary["repos"]["2"]
    assert two["full"]["label"] == "20261201-020500F" and "diff" not in two  # the failed one is not good
    assert two["count"] == 2 and summary["count"] == 2
    # a repository with nothing in it needs a full backup of its own; the other one a differential
    assert continuous.scheduled_type(summary["repos"]["1"], 7) == "diff"
    empty = dict(TWO_REPOS, backup=TWO_REPOS["backup"][:1])
    assert continuous.scheduled_type(continuous.backups_summary(empty, now=3000)["repos"]["2"], 7) == "full"


def test_health_names_the_repository_that_lacks_a_backup_or_is_stale():
    arch = {
        "archive_mode": "on",
        "archive_command": continuous.archive_command(STANZA),
        "failing": False,
        "last_archived_age_seconds": 10,
        "ready_segments": 0,
        "wal_bytes": 0,
    }
    summary = continuous.backups_summary(dict(TWO_REPOS, backup=TWO_REPOS["backup"][:1]), now=3000)
    problems = continuous.health(arch, summary, STANZA, 300)
    assert problems == [
        "repository 2 (off-site, S3) holds no good full backup; run playbooks/continuous.yml or the backup job"
    ]
    # repository 1's differential backup is 29 h old (fine), repository 2's newest good one 40 h
    summary = continuous.backups_summary(TWO_REPOS, now=2000 + 29 * 3600)
    summary["repos"]["2"]["full"]["age_seconds"] = 40 * 3600
    problems = continuous.health(arch, summary, STANZA, 300, max_full_age=30 * 3600)
    assert len(problems) == 1 and "in repository 2 (off-site, S3) is 40 h old" in problems[0]


def test_a_stanza_missing_in_one_repository_is_created_there():
    assert continuous.stanza_missing({}) == [1]
    info = dict(TWO_REPOS, repo=[{"key": 1, "status": {"code": 0}}, {"key": 2, "status": {"code": 1}}])
    assert continuous.stanza_missing(info) == [2]
    assert continuous.stanza_missing(TWO_REPOS) == []


def test_recovery_refuses_an_environment_that_is_not_pgbackrests_before_creating_anything():
    calls = []
    with pytest.raises(continuous.ContinuousError, match="only PGBACKREST_"):
        continuous.recover(
            lambda argv, **kw: calls.append(argv) or (0, "", ""),
            "img", STANZA, "/r", "/c", "n", 1, "u", "d", [], repo=2, repo_env={"PATH": "/x"},
        )  # fmt: skip
    assert calls == []


def test_the_s3_repository_is_bundled_and_can_name_its_port():
    conf = continuous.render_conf(
        STANZA, 5432, "lms_user", 2, repo2={"bucket": "b", "endpoint": "e", "path": "/p", "port": 9443}
    )
    assert "repo2-bundle=y" in conf and "repo2-storage-port=9443" in conf
