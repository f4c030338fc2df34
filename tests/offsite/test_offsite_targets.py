"""Off-site copies through the real modules: real backups, a real moto S3 server, real age and rsync.

Every test hashes the local backups before and after: an off-site run, successful or failed,
never changes a byte of them.
"""

import base64
import datetime
import hashlib
import json
import os
import subprocess

import pytest
from ansible.module_utils.datasafe import fetch, offsite
from harness import run_module as run
from offsite_helpers import FAKE_AWS, Moto, local_hashes, sha256_of
from pgbed import flip_byte

GZIP_MAGIC = b"\x1f\x8b"


def s3_args(moto, bucket, **extra):
    args = dict(
        bucket=bucket,
        endpoint_url=moto.endpoint,
        access_key=FAKE_AWS["AWS_ACCESS_KEY_ID"],
        secret_key=FAKE_AWS["AWS_SECRET_ACCESS_KEY"],
        region="us-east-1",
        prefix="lms/host-1",
    )
    args.update(extra)
    return args


def dir_args(dest, backup_dir, **extra):
    args = dict(target="dir", dest=str(dest), backup_dir=backup_dir, allow_same_filesystem=True)
    args.update(extra)
    return args


def names(items):
    return sorted(item["file"] for item in items)


# --------------------------------------------------------------------------- plain directory


def test_dir_four_steps_copy_verify_and_idempotence(backup_dir, tmp_path):
    dest = tmp_path / "nas"
    dest.mkdir()
    before = local_hashes(backup_dir)
    expected = sorted(n for n in before if n.endswith(".sql.gz"))

    check = run("offsite_copy", dir_args(dest, backup_dir), check_mode=True)
    assert not check["failed"], check["msg"]
    assert check["changed"] and names(check["would_copy"]) == expected and not check["copied"]
    assert os.listdir(dest) == []

    real = run("offsite_copy", dir_args(dest, backup_dir))
    assert not real["failed"], real["msg"]
    assert real["changed"] and names(real["copied"]) == expected
    for name in expected:
        assert sha256_of(dest / name) == before[name]
        remote = json.loads((dest / (name + ".json")).read_text())
        assert remote["offsite"]["sha256"] == before[name] and remote["offsite"]["encrypted"] is False
        assert remote["sha256"] == before[name] and remote["verified"] is True
        assert oct(os.stat(dest / name).st_mode & 0o777) == "0o600"
    assert not [n for n in os.listdir(dest) if n.startswith(".")]  # no temporary file left

    again_check = run("offsite_copy", dir_args(dest, backup_dir), check_mode=True)
    again = run("offsite_copy", dir_args(dest, backup_dir))
    assert not again_check["changed"] and not again_check["would_copy"]
    assert not again["changed"] and names(again["skipped"]) == expected
    assert local_hashes(backup_dir) == before


def test_dir_recopies_a_damaged_copy_and_only_that(backup_dir, tmp_path):
    dest = tmp_path / "nas"
    dest.mkdir()
    assert not run("offsite_copy", dir_args(dest, backup_dir))["failed"]
    damaged = sorted(n for n in os.listdir(dest) if n.endswith(".sql.gz"))[0]
    flip_byte(dest / damaged, 100)
    result = run("offsite_copy", dir_args(dest, backup_dir))
    assert not result["failed"], result["msg"]
    assert names(result["copied"]) == [damaged] and len(result["skipped"]) == 1
    assert sha256_of(dest / damaged) == sha256_of(os.path.join(backup_dir, damaged))


def test_dir_refuses_a_missing_or_local_destination_and_creates_nothing(backup_dir, tmp_path):
    before = local_hashes(backup_dir)
    missing = tmp_path / "not-mounted" / "nas"
    result = run("offsite_copy", dir_args(missing, backup_dir))
    assert result["failed"] and result["stage"] == "check target"
    assert "does not exist" in result["msg"] and "mounted" in result["msg"]
    assert not missing.parent.exists()

    same = tmp_path / "same-disk"
    same.mkdir()
    result = run("offsite_copy", dir_args(same, backup_dir, allow_same_filesystem=False))
    assert result["failed"] and "same filesystem" in result["msg"]
    assert os.listdir(same) == []
    assert local_hashes(backup_dir) == before


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs: too small for one backup. Unmounted after the test."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_full_destination_fails_and_leaves_no_copy_and_local_untouched(backup_dir, tiny_disk, tmp_path):
    before = local_hashes(backup_dir)
    metrics = tmp_path / "textfile" / "datasafe_offsite.prom"
    result = run("offsite_copy", dir_args(tiny_disk, backup_dir, metrics_file=str(metrics)))
    assert result["failed"] and result["stage"] == "copy", result
    assert "No space left" in result["msg"]
    assert os.listdir(tiny_disk) == []  # the partial temporary file was removed, nothing got a good name
    assert local_hashes(backup_dir) == before
    samples = offsite.read_metrics(str(metrics))[str(tiny_disk)]
    assert samples["datasafe_offsite_last_run_success"] == 0 and samples["datasafe_offsite_pending_backups"] == 2


def test_a_different_backup_of_the_same_name_is_never_overwritten(backup_dir, tmp_path):
    dest = tmp_path / "nas"
    dest.mkdir()
    assert not run("offsite_copy", dir_args(dest, backup_dir))["failed"]
    name = sorted(n for n in os.listdir(dest) if n.endswith(".sql.gz"))[0]
    remote = json.loads((dest / (name + ".json")).read_text())
    remote["offsite"]["source_sha256"] = "0" * 64  # another host's backup with the same name
    (dest / (name + ".json")).write_text(json.dumps(remote))
    payload_before = sha256_of(dest / name)
    result = run("offsite_copy", dir_args(dest, backup_dir))
    assert result["failed"] and "different backup named" in result["msg"]
    assert sha256_of(dest / name) == payload_before
    assert json.loads((dest / (name + ".json")).read_text())["offsite"]["source_sha256"] == "0" * 64


# --------------------------------------------------------------------------- bad local backups


def test_unverified_or_damaged_local_backups_are_never_shipped(backup_dir, tmp_path):
    dest = tmp_path / "nas"
    dest.mkdir()
    newest, oldest = sorted((n for n in os.listdir(backup_dir) if n.endswith(".sql.gz")), reverse=True)
    # named explicitly but not verified: an error, nothing copied
    manifest_path = os.path.join(backup_dir, oldest + ".json")
    data = json.load(open(manifest_path))
    data["verified"] = False
    json.dump(data, open(manifest_path, "w"))
    result = run(
        "offsite_copy",
        dict(target="dir", dest=str(dest), backups=[os.path.join(backup_dir, oldest)], allow_same_filesystem=True),
    )
    assert result["failed"] and "verified" in result["msg"] and os.listdir(dest) == []
    # found by scanning: ignored with its reason, the good one is copied
    result = run("offsite_copy", dir_args(dest, backup_dir))
    assert not result["failed"], result["msg"]
    assert names(result["copied"]) == [newest] and names(result["ignored"]) == [oldest]
    # a flipped byte in a local backup: reported, not shipped, the file left exactly as it is
    data["verified"] = True
    json.dump(data, open(manifest_path, "w"))
    flip_byte(os.path.join(backup_dir, oldest), 50, mask=0x01)
    before = local_hashes(backup_dir)
    result = run("offsite_copy", dir_args(dest, backup_dir))
    assert result["failed"] and result["stage"] == "check local backups"
    assert "sha256" in result["msg"] and oldest in result["msg"]
    assert not (dest / oldest).exists() and local_hashes(backup_dir) == before


def test_bad_input_is_refused_with_the_fix_and_nothing_changes(backup_dir, tmp_path):
    dest = tmp_path / "nas"
    dest.mkdir()
    nothing = run("offsite_copy", dict(target="dir", dest=str(dest)))
    assert nothing["failed"] and "backup_dir" in nothing["msg"]
    no_keys = run("offsite_copy", dir_args(dest, backup_dir, encrypt=True))
    assert no_keys["failed"] and "datasafe_offsite_age_recipients" in no_keys["msg"]
    bad_key = run("offsite_copy", dir_args(dest, backup_dir, encrypt=True, age_recipients=["age1-not-a-key-SECRET"]))
    assert bad_key["failed"] and "recipient #1" in bad_key["msg"] and "SECRET" not in bad_key["msg"]
    assert os.listdir(dest) == []


# --------------------------------------------------------------------------- S3


def test_s3_four_steps_checksum_verified_and_idempotent(backup_dir, moto):
    bucket = moto.bucket()
    s3 = moto.client()
    before = local_hashes(backup_dir)
    expected = sorted(n for n in before if n.endswith(".sql.gz"))

    check = run("offsite_s3", s3_args(moto, bucket, backup_dir=backup_dir), check_mode=True)
    assert not check["failed"], check["msg"]
    assert check["changed"] and names(check["would_copy"]) == expected
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0

    real = run("offsite_s3", s3_args(moto, bucket, backup_dir=backup_dir))
    assert not real["failed"], real["msg"]
    assert real["changed"] and names(real["copied"]) == expected and real["target"] == "s3://%s/lms/host-1/" % bucket
    for name in expected:
        head = s3.head_object(Bucket=bucket, Key="lms/host-1/" + name, ChecksumMode="ENABLED")
        assert head["ChecksumSHA256"] == base64.b64encode(bytes.fromhex(before[name])).decode()
        assert head["Metadata"]["sha256"] == before[name]
        body = s3.get_object(Bucket=bucket, Key="lms/host-1/" + name)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == before[name]
        remote = json.loads(s3.get_object(Bucket=bucket, Key="lms/host-1/%s.json" % name)["Body"].read())
        assert remote["offsite"]["s3_checksum_sha256"] == head["ChecksumSHA256"]
        assert remote["offsite"]["source_sha256"] == before[name]

    again_check = run("offsite_s3", s3_args(moto, bucket, backup_dir=backup_dir), check_mode=True)
    again = run("offsite_s3", s3_args(moto, bucket, backup_dir=backup_dir))
    assert not again_check["changed"] and not again["changed"] and names(again["skipped"]) == expected
    assert local_hashes(backup_dir) == before


def test_s3_download_verification_catches_an_object_whose_checksum_lies(backup_dir, moto):
    bucket = moto.bucket()
    s3 = moto.client()
    args = s3_args(moto, bucket, backup_dir=backup_dir, verify="download")
    assert not run("offsite_s3", args)["failed"]
    name = sorted(n for n in os.listdir(backup_dir) if n.endswith(".sql.gz"))[0]
    key = "lms/host-1/" + name
    good = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    forged = bytes([good[0] ^ 0xFF]) + good[1:]  # same size; moto keeps the claimed checksum
    s3.put_object(
        Bucket=bucket, Key=key, Body=forged, ChecksumAlgorithm="SHA256", ChecksumSHA256=head["ChecksumSHA256"]
    )
    result = run("offsite_s3", args)
    assert not result["failed"], result["msg"]
    assert names(result["copied"]) == [name]
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == good


def test_s3_encrypted_copy_is_not_plaintext_and_decrypts_to_the_backup(backup_dir, moto, age_identity, tmp_path):
    identity, recipient = age_identity
    bucket = moto.bucket()
    s3 = moto.client()
    before = local_hashes(backup_dir)
    args = s3_args(moto, bucket, backup_dir=backup_dir, encrypt=True, age_recipients=[recipient])
    result = run("offsite_s3", args)
    assert not result["failed"], result["msg"]
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys and all(k.endswith(".sql.gz.age") or k.endswith(".sql.gz.age.json") for k in keys)
    for item in result["copied"]:
        key = "lms/host-1/" + item["payload"]
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body.startswith(offsite.AGE_MAGIC) and GZIP_MAGIC not in body[:64]
        remote = json.loads(s3.get_object(Bucket=bucket, Key=key + ".json")["Body"].read())
        assert remote["offsite"]["sha256"] == hashlib.sha256(body).hexdigest() != before[item["file"]]
        assert remote["offsite"]["encrypted"] is True and remote["offsite"]["source_sha256"] == before[item["file"]]
        encrypted = tmp_path / item["payload"]
        encrypted.write_bytes(body)
        plain = subprocess.run(["age", "--decrypt", "-i", identity, str(encrypted)], capture_output=True, check=True)
        assert hashlib.sha256(plain.stdout).hexdigest() == before[item["file"]]
    staging = os.path.join(backup_dir, ".offsite-staging")
    assert os.listdir(staging) == [] and oct(os.stat(staging).st_mode & 0o777) == "0o700"
    again = run("offsite_s3", args)
    assert not again["changed"] and len(again["skipped"]) == 2
    assert local_hashes(backup_dir) == before


def test_s3_failures_never_touch_the_local_backup(backup_dir, moto, tmp_path):
    before = local_hashes(backup_dir)
    metrics = tmp_path / "textfile" / "datasafe_offsite.prom"
    wrong = run("offsite_s3", s3_args(moto, "no-such-bucket-here", backup_dir=backup_dir, metrics_file=str(metrics)))
    assert wrong["failed"] and wrong["stage"] == "check target" and "no-such-bucket-here" in wrong["msg"]

    own = Moto(str(tmp_path)).start()  # a server of this test's own, to take away
    bucket = own.bucket()
    label = "s3://%s/lms/host-1/" % bucket
    ok = run(
        "offsite_s3",
        s3_args(own, bucket, backups=[os.path.join(backup_dir, sorted(before)[0])], metrics_file=str(metrics)),
    )
    assert not ok["failed"], ok["msg"]
    success_time = offsite.read_metrics(str(metrics))[label]["datasafe_offsite_last_success_timestamp_seconds"]
    own.stop()
    down = run("offsite_s3", s3_args(own, bucket, backup_dir=backup_dir, metrics_file=str(metrics)))
    assert down["failed"] and down["stage"] == "check target"
    assert local_hashes(backup_dir) == before
    samples = offsite.read_metrics(str(metrics))
    assert samples[label]["datasafe_offsite_last_run_success"] == 0
    assert samples[label]["datasafe_offsite_last_success_timestamp_seconds"] == success_time > 0
    assert samples["s3://no-such-bucket-here/lms/host-1/"]["datasafe_offsite_last_run_success"] == 0


def test_s3_multipart_upload_is_verified_by_its_composite_checksum(tmp_path, moto, source_backups):
    """A backup larger than the threshold goes up in parts (threshold and parts at S3's 5 MiB minimum)."""
    directory = tmp_path / "big"
    directory.mkdir()
    name = "lms_backup_20261124_020000.sql.gz"
    with open(directory / name, "wb") as out:  # concatenated gzip members are one valid gzip stream
        while out.tell() < 11 * 1024 * 1024:
            out.write(open(source_backups["files"][0], "rb").read())
    manifest = json.load(open(source_backups["files"][0] + ".json"))
    manifest.update(
        file=name,
        path=str(directory / name),
        size=os.path.getsize(directory / name),
        sha256=sha256_of(directory / name),
    )
    (directory / (name + ".json")).write_text(json.dumps(manifest))
    bucket = moto.bucket()
    args = s3_args(
        moto, bucket, backup_dir=str(directory), multipart_threshold=5 * 1024 * 1024, part_size=5 * 1024 * 1024
    )
    result = run("offsite_s3", args)
    assert not result["failed"], result["msg"]
    remote = json.loads(moto.client().get_object(Bucket=bucket, Key="lms/host-1/%s.json" % name)["Body"].read())
    assert remote["offsite"]["s3_checksum_sha256"].endswith("-3")
    body = moto.client().get_object(Bucket=bucket, Key="lms/host-1/" + name)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == manifest["sha256"]
    assert not run("offsite_s3", args)["changed"]


def test_s3_refuses_plain_http_off_loopback(backup_dir):
    result = run(
        "offsite_s3",
        dict(
            bucket="lab-backups",
            endpoint_url="http://backup.example.org:9000",
            access_key="a",
            secret_key="b",
            region="us-east-1",
            backup_dir=backup_dir,
        ),
    )
    assert result["failed"] and "loopback" in result["msg"]
    result = run(
        "offsite_s3",
        dict(
            bucket="lab-backups",
            validate_certs=False,
            access_key="a",
            secret_key="b",
            region="us-east-1",
            backup_dir=backup_dir,
        ),
    )
    assert result["failed"] and "validate_certs" in result["msg"]


# --------------------------------------------------------------------------- rsync


def test_rsync_copy_is_checksum_verified_idempotent_and_encrypted(backup_dir, tmp_path, age_identity):
    identity, recipient = age_identity
    before = local_hashes(backup_dir)
    plain_dest, enc_dest = tmp_path / "rsync-plain", tmp_path / "rsync-age"
    plain_dest.mkdir()
    enc_dest.mkdir()
    plain = dict(target="rsync", dest=str(plain_dest), backup_dir=backup_dir)
    check = run("offsite_copy", plain, check_mode=True)
    assert check["changed"] and len(check["would_copy"]) == 2 and os.listdir(plain_dest) == []
    first = run("offsite_copy", plain)
    assert not first["failed"], first["msg"]
    assert first["changed"] and len(first["copied"]) == 2 and first["target"] == str(plain_dest) + "/"
    for item in first["copied"]:
        assert sha256_of(plain_dest / item["file"]) == before[item["file"]]
    assert not run("offsite_copy", plain)["changed"]

    encrypted = dict(plain, dest=str(enc_dest), encrypt=True, age_recipients=[recipient])
    result = run("offsite_copy", encrypted)
    assert not result["failed"], result["msg"]
    for item in result["copied"]:
        data = (enc_dest / item["payload"]).read_bytes()
        assert data.startswith(offsite.AGE_MAGIC)
        out = subprocess.run(
            ["age", "--decrypt", "-i", identity, str(enc_dest / item["payload"])], capture_output=True, check=True
        ).stdout
        assert hashlib.sha256(out).hexdigest() == before[item["file"]]
    assert not [n for n in os.listdir(enc_dest) if n.endswith(".sql.gz")]  # no plaintext left the host
    assert not run("offsite_copy", encrypted)["changed"]
    assert local_hashes(backup_dir) == before


def test_rsync_failure_never_touches_the_local_backup(backup_dir, tmp_path):
    before = local_hashes(backup_dir)
    result = run(
        "offsite_copy", dict(target="rsync", dest=str(tmp_path / "no" / "such" / "dir"), backup_dir=backup_dir)
    )
    assert result["failed"] and result["stage"] in ("check target", "copy")
    assert not (tmp_path / "no").exists()
    assert local_hashes(backup_dir) == before


# --------------------------------------------------------------------------- metrics


def test_metrics_keep_every_target_and_are_written_atomically(backup_dir, tmp_path, moto):
    metrics = tmp_path / "textfile" / "datasafe_offsite.prom"
    dest = tmp_path / "nas"
    dest.mkdir()
    assert not run("offsite_copy", dir_args(dest, backup_dir, metrics_file=str(metrics)))["failed"]
    bucket = moto.bucket()
    assert not run("offsite_s3", s3_args(moto, bucket, backup_dir=backup_dir, metrics_file=str(metrics)))["failed"]
    text = metrics.read_text()
    assert "# TYPE datasafe_offsite_last_run_success gauge" in text
    samples = offsite.read_metrics(str(metrics))
    assert set(samples) == {str(dest), "s3://%s/lms/host-1/" % bucket}
    for target in samples.values():
        assert target["datasafe_offsite_last_run_success"] == 1
        assert target["datasafe_offsite_last_run_copied_backups"] == 2
        assert target["datasafe_offsite_pending_backups"] == 0
        newest = datetime.datetime(2026, 11, 23, 2, 0, 9, tzinfo=datetime.timezone.utc).timestamp()
        assert target["datasafe_offsite_newest_backup_timestamp_seconds"] == newest
    assert sorted(os.listdir(metrics.parent)) == ["datasafe_offsite.prom", "datasafe_offsite.prom.lock"]
    assert oct(os.stat(metrics).st_mode & 0o777) == "0o644"


def test_metrics_label_escaping_round_trips(tmp_path):
    path = str(tmp_path / "m.prom")
    odd = 'backup@nas:/srv/"lms"\\x/'
    offsite.write_metrics(path, odd, True, 0.0, copied=1)
    assert offsite.read_metrics(path)[odd]["datasafe_offsite_last_run_copied_backups"] == 1


# --------------------------------------------------------------------------- the way back: offsite_fetch

NEWER, OLDER = "lms_backup_20261123_020000.sql.gz", "lms_backup_20261122_020000.sql.gz"


def fetch_args(nas, **extra):
    return dict(dict(type="dir", path=str(nas), database="lms_slncity"), **extra)


def test_fetch_lists_a_directory_target_and_fetches_the_newest_verified(backup_dir, tmp_path):
    nas, dest = tmp_path / "nas", tmp_path / "restored"
    nas.mkdir()
    before = local_hashes(backup_dir)
    assert not run("offsite_copy", dir_args(nas, backup_dir))["failed"]

    listed = run("offsite_fetch", fetch_args(nas))
    assert not listed["failed"] and listed["changed"] is False and "chosen" not in listed
    assert [b["file"] for b in listed["backups"]] == [NEWER, OLDER]
    assert all(b["complete"] and not b["encrypted"] and "manifest" not in b for b in listed["backups"])

    planned = run("offsite_fetch", fetch_args(nas, state="fetched", dest=str(dest)), check_mode=True)
    assert not planned["failed"], planned["msg"]
    assert planned["changed"] is True and planned["chosen"]["file"] == NEWER and "path" not in planned
    assert not dest.exists(), "check mode downloads nothing"

    fetched = run("offsite_fetch", fetch_args(nas, state="fetched", dest=str(dest)))
    assert not fetched["failed"], fetched["msg"]
    assert fetched["changed"] is True and fetched["path"] == str(dest / NEWER)
    assert sha256_of(dest / NEWER) == before[NEWER] and fetched["manifest"]["sha256"] == before[NEWER]
    assert fetched["manifest"]["fetched_from"]["target"] == listed["target"]
    assert fetched["msg"] == "fetched %s from %s, verified: %s" % (
        NEWER,
        listed["target"],
        "; ".join(fetched["checks"]),
    )
    assert sorted(os.listdir(dest)) == [NEWER, NEWER + ".json"]

    again = run("offsite_fetch", fetch_args(nas, state="fetched", dest=str(dest)))
    assert not again["failed"] and again["changed"] is False and again["path"] == fetched["path"]
    assert local_hashes(backup_dir) == before


def test_fetch_refuses_a_tampered_copy_before_anything_is_placed(backup_dir, tmp_path):
    nas, dest = tmp_path / "nas", tmp_path / "restored"
    nas.mkdir()
    assert not run("offsite_copy", dir_args(nas, backup_dir))["failed"]
    flip_byte(nas / NEWER, 100)
    result = run("offsite_fetch", fetch_args(nas, state="fetched", dest=str(dest)))
    assert result["failed"] and result["stage"] == "verify download" and result["chosen"]["file"] == NEWER
    assert result["msg"].startswith("offsite_fetch: verify download: %s at %s is " % (NEWER, result["target"]))
    assert os.listdir(dest) == [], "nothing placed, no temporary left"
    missing = run("offsite_fetch", fetch_args(nas, state="fetched", dest=str(dest), backup="lms_backup_x.sql.gz"))
    assert missing["failed"] and missing["stage"] == "choose backup" and len(missing["backups"]) == 2
    assert missing["msg"] == (
        "offsite_fetch: choose backup: the target holds no backup named lms_backup_x.sql.gz "
        "(list them with datasafe_recover_server_mode=list)"
    )


def test_fetch_decrypts_with_the_identity_and_names_what_is_missing(backup_dir, tmp_path, age_identity):
    identity, recipient = age_identity
    nas, dest = tmp_path / "nas", tmp_path / "restored"
    nas.mkdir()
    before = local_hashes(backup_dir)
    assert not run("offsite_copy", dir_args(nas, backup_dir, encrypt=True, age_recipients=[recipient]))["failed"]
    args = fetch_args(nas, state="fetched", dest=str(dest), backup=OLDER)

    no_key = run("offsite_fetch", args)
    assert no_key["failed"] and no_key["stage"] == "decrypt" and no_key["chosen"]["encrypted"] is True
    assert no_key["msg"] == (
        "offsite_fetch: decrypt: %s.age is age-encrypted: age_identity must name the identity file" % OLDER
    )
    assert not dest.exists()

    def no_age(name):
        raise ValueError('Failed to find required executable "%s" in paths: /nowhere' % name)

    with pytest.raises(offsite.Failed) as failed:
        fetch.task(dict(args, age_identity=identity), lambda: offsite.DirectoryTarget(str(nas)), which=no_age)
    assert str(failed.value) == 'Failed to find required executable "age" in paths: /nowhere'
    assert failed.value.result == {} and not dest.exists()

    fetched = run("offsite_fetch", dict(args, age_identity=identity))
    assert not fetched["failed"], fetched["msg"]
    assert "decrypted with age" in fetched["checks"] and sha256_of(dest / OLDER) == before[OLDER]


def test_fetch_from_s3_and_its_refusal_of_an_insecure_endpoint(backup_dir, moto, tmp_path):
    bucket = moto.bucket()
    before = local_hashes(backup_dir)
    assert not run("offsite_s3", s3_args(moto, bucket, backup_dir=backup_dir))["failed"]
    s3 = s3_args(moto, bucket, type="s3", database="lms_slncity")
    fetched = run("offsite_fetch", dict(s3, state="fetched", dest=str(tmp_path / "restored")))
    assert not fetched["failed"], fetched["msg"]
    assert fetched["target"] == "s3://%s/lms/host-1/" % bucket
    assert [b["file"] for b in fetched["backups"]] == [NEWER, OLDER]
    assert sha256_of(tmp_path / "restored" / NEWER) == before[NEWER]

    refused = run("offsite_fetch", dict(s3, endpoint_url="http://backup.example.org:9000"))
    assert refused["failed"] and refused["msg"].startswith("offsite_fetch: ") and "loopback" in refused["msg"]
    assert "stage" not in refused and "backups" not in refused
