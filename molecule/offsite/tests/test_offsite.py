"""After playbooks/offsite.yml with encryption: every verified backup is at every target, encrypted,
verified, and decrypts to exactly the local backup; the local backups are untouched."""

import hashlib
import json
import os
import subprocess

import boto3
import pytest
from stackvars import rendered

AGE_MAGIC = b"age-encryption.org/v1\n"


@pytest.fixture(scope="module")
def offsite(host, stack):
    root = stack["datasafe_test_root"]
    slot = int(os.environ.get("DATASAFE_TEST_SLOT", "5"))
    names = ("datasafe_backup_dir", "datasafe_test_root")
    v = dict(stack, **rendered(host, names))
    v["endpoint"] = "http://127.0.0.1:%d" % (56002 + slot * 10)
    v["bucket"] = "dstest-%s" % os.environ["MOLECULE_SCENARIO_NAME"]
    v["identity"] = os.path.join(root, "age-identity.txt")
    v["s3"] = boto3.client(
        "s3",
        endpoint_url=v["endpoint"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    backup_dir = v["datasafe_backup_dir"]
    v["backups"] = {
        n: json.load(open(os.path.join(backup_dir, n + ".json")))
        for n in os.listdir(backup_dir)
        if n.endswith(".sql.gz")
    }
    assert v["backups"], "prepare made no backup"
    return v


def expected_names(offsite):
    """Every backup's encrypted payload, its encrypted roles file and its off-site manifest."""
    names = set()
    for name, manifest in offsite["backups"].items():
        names |= {name + ".age", name + ".age.json"}
        if manifest.get("roles"):
            names.add(manifest["roles"]["file"] + ".age")
    return names


def decrypt(offsite, data, tmp_path):
    encrypted = tmp_path / "payload.age"
    encrypted.write_bytes(data)
    out = subprocess.run(
        ["age", "--decrypt", "-i", offsite["identity"], str(encrypted)], capture_output=True, check=True
    ).stdout
    return hashlib.sha256(out).hexdigest()


def test_local_backups_are_untouched(offsite):
    for name, manifest in offsite["backups"].items():
        with open(os.path.join(offsite["datasafe_backup_dir"], name), "rb") as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == manifest["sha256"]


def test_s3_holds_only_encrypted_copies_that_decrypt_to_the_backup(offsite, tmp_path):
    s3, bucket = offsite["s3"], offsite["bucket"]
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {"lms/" + n for n in expected_names(offsite)}
    for name, manifest in offsite["backups"].items():
        body = s3.get_object(Bucket=bucket, Key="lms/%s.age" % name)["Body"].read()
        assert body.startswith(AGE_MAGIC) and not body.startswith(b"\x1f\x8b")
        remote = json.loads(s3.get_object(Bucket=bucket, Key="lms/%s.age.json" % name)["Body"].read())
        assert remote["offsite"]["sha256"] == hashlib.sha256(body).hexdigest()
        assert remote["offsite"]["source_sha256"] == manifest["sha256"]
        head = s3.head_object(Bucket=bucket, Key="lms/%s.age" % name, ChecksumMode="ENABLED")
        assert head["ChecksumSHA256"] == remote["offsite"]["s3_checksum_sha256"]
        assert decrypt(offsite, body, tmp_path) == manifest["sha256"]
        roles = manifest["roles"]
        body = s3.get_object(Bucket=bucket, Key="lms/%s.age" % roles["file"])["Body"].read()
        assert remote["offsite"]["roles"]["sha256"] == hashlib.sha256(body).hexdigest()
        assert decrypt(offsite, body, tmp_path) == roles["sha256"]


@pytest.mark.parametrize("where", ["nas", "rsync"])
def test_directory_and_rsync_copies_decrypt_to_the_backup(offsite, where, tmp_path):
    dest = os.path.join(offsite["datasafe_test_root"], where)
    assert set(os.listdir(dest)) == expected_names(offsite)
    for name, manifest in offsite["backups"].items():
        with open(os.path.join(dest, name + ".age"), "rb") as handle:
            data = handle.read()
        assert data.startswith(AGE_MAGIC)
        assert decrypt(offsite, data, tmp_path) == manifest["sha256"]


def test_metrics_report_every_target_succeeded(host, offsite):
    path = os.path.join(os.path.dirname(offsite["datasafe_change_log"]), "datasafe_offsite.prom")
    text = host.file(path).content_string
    success = [line for line in text.splitlines() if line.startswith("datasafe_offsite_last_run_success{")]
    assert len(success) == 3 and all(line.endswith(" 1") for line in success)
    assert host.file(path).mode == 0o644


def test_change_log_records_the_copies(host, offsite):
    log = host.file(offsite["datasafe_change_log"]).content_string
    assert log.count("off-site to") >= 3
