"""Server loss, end to end, with real parts: a compose stack, the nightly job, moto S3, age.

The tests of this module share one "old server" and run in order, as the story goes: the
nightly job copies off-site; a failed upload; a tampered copy refused; the server is destroyed
(stack, volume, checkout, local backups) and recover_server.yml rebuilds it on a fresh stack,
whose content fingerprint must equal the old one; the drill restores roles into a fresh server.
"""

import json
import os
import shutil
import subprocess
import urllib.request

import pytest
from recovery_helpers import RICH_SCHEMA, fingerprint, sanity, sh

pytestmark = pytest.mark.slow

AGE_MAGIC = b"age-encryption.org/v1\n"
STATE = {}


def backups_in(directory):
    return sorted(n for n in os.listdir(directory) if n.endswith(".sql.gz"))


def hashes(directory):
    out = {}
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if os.path.isfile(path) and not name.startswith("."):
            with open(path, "rb") as handle:
                out[name] = handle.read()
    return out


def s3_keys(server, prefix):
    page = server.moto.client().list_objects_v2(Bucket=server.bucket, Prefix=prefix)
    return sorted(o["Key"][len(prefix) :] for o in page.get("Contents", []))


def test_the_schema_file_holds_what_real_systems_accumulate():
    with open(RICH_SCHEMA, encoding="utf-8") as handle:
        text = handle.read()
    for needed in (
        "CREATE EXTENSION",
        "CREATE ROLE lab_reporter",
        "GRANT SELECT",
        "CREATE TYPE lab.sample_state AS ENUM",
        "CREATE DOMAIN",
        "GENERATED ALWAYS AS IDENTITY",
        "GENERATED ALWAYS AS (volume / 1000) STORED",
        "PARTITION BY RANGE",
        '"Audit Trail ""v2"""',
        "CREATE TRIGGER",
        "CREATE VIEW",
        "CREATE MATERIALIZED VIEW",
        "START WITH 7000000000",
        "lo_from_bytea",
        "東京",
    ):
        assert needed in text, needed


def test_the_nightly_job_copies_the_verified_backup_and_its_roles_offsite_encrypted(old_server):
    proc = old_server.nightly_job()
    log = old_server.job_log_tail()
    assert proc.returncode == 0, log
    assert "datasafe backup job finished OK" in log
    [backup] = backups_in(old_server.backups)
    path = os.path.join(old_server.backups, backup)
    with open(path + ".json") as handle:
        manifest = json.load(handle)
    roles = manifest["roles"]
    assert roles["verified"] is True and roles["passwords"] == "hashes"
    assert {"lab_reporter", "lab_readers", "Lab Auditor", "lms_user"} <= set(roles["roles"])
    roles_path = os.path.join(old_server.backups, roles["file"])
    assert os.stat(roles_path).st_mode & 0o777 == 0o600
    with open(roles_path, encoding="utf-8") as handle:
        text = handle.read()
    assert "CREATE ROLE lab_reporter;" in text and "SCRAM-SHA-256$" in text
    # Off-site: the payload and the roles file, both age-encrypted, and the manifest last.
    keys = s3_keys(old_server, "lms/old-server/")
    assert keys == sorted([backup + ".age", backup + ".age.json", roles["file"] + ".age"])
    client = old_server.moto.client()
    for key in (backup + ".age", roles["file"] + ".age"):
        body = client.get_object(Bucket=old_server.bucket, Key="lms/old-server/" + key)["Body"].read()
        assert body.startswith(AGE_MAGIC) and b"lab_reporter" not in body
    # The ledger records the verified copy.
    with open(os.path.join(old_server.backups, "offsite-ledger.json")) as handle:
        ledger = json.load(handle)
    row = ledger["copies"][backup]["s3://%s/lms/old-server/" % old_server.bucket]
    assert row["source_sha256"] == manifest["sha256"] and row["payload"] == backup + ".age"
    STATE["backup"] = backup
    STATE["fingerprint"] = fingerprint(old_server)
    sanity(STATE["fingerprint"])


def test_a_failed_upload_keeps_the_local_backup_and_fails_the_job_loudly(old_server):
    before = hashes(old_server.backups)
    missing = "dstest-missing-%s" % old_server.id
    proc = old_server.nightly_job({"datasafe_offsite_targets": [old_server.s3_target(bucket=missing)]})
    log = old_server.job_log_tail()
    assert proc.returncode != 0, log
    assert "FAILED" in log and "off-site copy FAILED" in log
    after = hashes(old_server.backups)
    assert {k: v for k, v in after.items() if k in before and k != "offsite-ledger.json"} == {
        k: v for k, v in before.items() if k != "offsite-ledger.json"
    }
    new = [n for n in backups_in(old_server.backups) if n not in before]
    assert len(new) == 1, "the new backup is verified and kept"
    with open(os.path.join(old_server.backups, new[0] + ".json")) as handle:
        assert json.load(handle)["verified"] is True
    # retention ran and kept every backup that is not verified at the (failing) target
    assert "kept, not verified off-site: %s" % new[0] in log
    with open(old_server.change_log, encoding="utf-8") as handle:
        assert "Off-site copy to s3://%s/lms/old-server/ FAILED" % missing in handle.read()
    with open(os.path.join(old_server.root, "datasafe_offsite.prom"), encoding="utf-8") as handle:
        assert 'datasafe_offsite_last_run_success{target="s3://%s/lms/old-server/"} 0' % missing in handle.read()
    # The failed backup is not off-site; put the old server back as the story needs it (one copy).
    for name in (new[0], new[0] + ".json", new[0] + ".roles"):
        os.unlink(os.path.join(old_server.backups, name))


def test_a_tampered_offsite_copy_is_refused_before_anything_stops(old_server):
    client, bucket = old_server.moto.client(), old_server.bucket
    for key in s3_keys(old_server, "lms/old-server/"):
        body = client.get_object(Bucket=bucket, Key="lms/old-server/" + key)["Body"].read()
        if key.endswith(".sql.gz.age"):
            body = body[:-100] + bytes([body[-100] ^ 0x01]) + body[-99:]
        client.put_object(Bucket=bucket, Key="lms/tampered/" + key, Body=body)
    running = old_server.container_ids().stdout
    fetch_dir = os.path.join(old_server.root, "tampered-fetch")
    proc = old_server.playbook(
        "recover_server.yml",
        {
            "datasafe_offsite_targets": [old_server.s3_target("lms/tampered/")],
            "datasafe_recover_server_app_repo": old_server.remote,
            "datasafe_recover_server_age_identity": old_server.identity,
            "datasafe_backup_dir": fetch_dir,
        },
        check=False,
    )
    assert proc.returncode != 0
    assert "verify download" in proc.stdout and "refused" in proc.stdout, proc.stdout[-3000:]
    assert old_server.container_ids().stdout == running, "nothing was stopped or recreated"
    assert (os.listdir(fetch_dir) if os.path.isdir(fetch_dir) else []) == [], "nothing was placed, not even a temp file"


def test_after_the_server_is_lost_recover_server_rebuilds_it_identically(old_server):
    assert "fingerprint" in STATE, "runs after the nightly job test"
    old_server.destroy_everything_but_the_image()
    volume = sh(["docker", "volume", "ls", "-q", "--filter", "name=%s_postgres_data" % old_server.project])
    assert volume.stdout.strip() == ""
    proc = old_server.playbook(
        "recover_server.yml",
        {
            "datasafe_recover_server_app_repo": old_server.remote,
            "datasafe_recover_server_age_identity": old_server.identity,
        },
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:] + old_server.diagnose()
    assert fingerprint(old_server) == STATE["fingerprint"]
    url = old_server.variables()["datasafe_health_url"]
    assert url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - a loopback http URL, checked above
        assert answer.status == 200
    crontab = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=False).stdout
    assert "datasafe test %s" % old_server.project in crontab
    with open(old_server.change_log, encoding="utf-8") as handle:
        assert "Recovered lms_slncity onto localhost from the off-site copy %s.age" % STATE["backup"] in handle.read()
    # The app is at the revision the manifest recorded.
    with open(os.path.join(old_server.backups, STATE["backup"] + ".json")) as handle:
        revision = json.load(handle)["app_revision"]
    head = sh(["git", "-C", old_server.app, "rev-parse", "HEAD"]).stdout.strip()
    assert revision and head == revision


def test_recover_server_refuses_a_host_whose_stack_has_a_database(old_server):
    running = old_server.container_ids().stdout
    proc = old_server.playbook(
        "recover_server.yml",
        {
            "datasafe_recover_server_app_repo": old_server.remote,
            "datasafe_recover_server_age_identity": old_server.identity,
        },
        check=False,
    )
    assert proc.returncode != 0
    assert "recover_server refused: the volume %s_postgres_data already exists" % old_server.project in proc.stdout
    assert old_server.container_ids().stdout == running
    assert fingerprint(old_server) == STATE["fingerprint"]


def test_the_drill_restores_roles_and_database_into_a_truly_fresh_server(old_server):
    proc = old_server.playbook("restore_drill.yml", check=False)
    assert proc.returncode == 0, proc.stdout[-4000:]
    with open(old_server.change_log, encoding="utf-8") as handle:
        assert "Restore drill of %s" % STATE["backup"] in handle.read()
    jsonl = os.path.splitext(old_server.change_log)[0] + ".jsonl"
    with open(jsonl, encoding="utf-8") as handle:
        drills = [json.loads(line) for line in handle if '"restore_drill"' in line]
    assert drills[-1]["outcome"] == "completed"


def test_the_drill_can_restore_what_the_offsite_target_holds(old_server):
    temporaries = set(n for n in os.listdir("/tmp") if n.startswith("datasafe-drill-fetch-"))
    proc = old_server.playbook(
        "restore_drill.yml",
        {"datasafe_restore_drill_from_offsite": True, "datasafe_restore_drill_age_identity": old_server.identity},
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    jsonl = os.path.splitext(old_server.change_log)[0] + ".jsonl"
    with open(jsonl, encoding="utf-8") as handle:
        drill = [json.loads(line) for line in handle if '"restore_drill"' in line][-1]
    assert drill["outcome"] == "completed"
    # it drilled the copy fetched (and verified) from the off-site target, not the local one
    fetched = drill["backup"]
    assert fetched.startswith("/tmp/datasafe-drill-fetch-") and fetched.endswith(STATE["backup"]), fetched
    left = set(n for n in os.listdir("/tmp") if n.startswith("datasafe-drill-fetch-")) - temporaries
    assert left == set(), "the fetched copy (with password hashes) is removed"


def test_cleanup_leaves_no_fetch_temporaries(old_server):
    leftovers = [n for n in os.listdir(old_server.backups) if ".fetch-" in n or n.startswith(".decrypted-")]
    assert leftovers == []
    shutil.rmtree(os.path.join(old_server.root, "tampered-fetch"), ignore_errors=True)
