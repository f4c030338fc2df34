"""The off-site layer for real: a second pgBackRest repository on S3, encrypted, recovered alone.

One throwaway server of the test bed's pgBackRest image archives exactly as datasafe's override
configures it (continuous.server_settings, render_conf with repo2) into repository 1 on a host
directory and repository 2 on an S3 stand-in: moto's server on a loopback port, over TLS
(pgBackRest's S3 client speaks nothing else; a throwaway self-signed certificate, so
repo2-storage-verify-tls=n, uri style path; moto_tls.py says why not ``moto_server --ssl``). The
S3 key, secret and cipher passphrase reach the database container through its environment
(PGBACKREST_REPO2_*), never pgbackrest.conf.

Through the real modules (continuous_backup, continuous_recover, in-process with ansible-core's
harness):

- a backup goes to each repository (repository 1, then 2), each listed good and verified;
- rows committed after it are archived to both; with the local repository directory moved
  away, recovery to latest from repository 2 alone (the secrets read from the live container, the
  local directory not even mounted) has every committed row;
- the objects in the bucket are encrypted: the marker text written into the table is in the
  local repository's (compressed, unencrypted) WAL, and in none of the bucket's objects;
- retention runs per repository (repo1 keeps 2 full backups, repo2 1);
- with S3 unreachable, the next backup fails naming repository 2; repository 1's backups stay
  listed good and verified (its backup of the same run either completes, or, as archive-push
  fails while a repository is unreachable, fails naming repository 1 and is not listed).
"""

import gzip
import os
import subprocess
import time
import uuid

import pytest
from ansible.module_utils.datasafe import container, continuous, runner
from harness import run_module
from pgbed import docker, free_port, throwaway_labels

IMAGE = "datasafe/postgres:15-bookworm-pgbackrest"
USER, DB, STANZA = "lms_user", "lms_slncity", "repotwotest"
HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = os.path.join(os.path.dirname(os.path.dirname(HERE)), ".venv", "bin", "python")
run = runner.run


def sql(name, text):
    return container.query(run, name, DB, USER, text)


def self_signed(directory):
    """A throwaway self-signed certificate for 127.0.0.1: (cert file, key file)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = os.path.join(directory, "s3-cert.pem"), os.path.join(directory, "s3-key.pem")
    with open(cert_file, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_file, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return cert_file, key_file


class TlsMoto:
    """moto's S3 server on a free loopback port, over TLS with a throwaway self-signed certificate
    (moto_tls.py says why not ``moto_server --ssl``); only the process started here is ever stopped."""

    def __init__(self, log_dir):
        self.port = free_port()
        self.dir = log_dir
        self.log = os.path.join(log_dir, "moto.log")
        self.proc = None

    def start(self):
        cert, key = self_signed(self.dir)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [PYTHON, os.path.join(HERE, "moto_tls.py"), str(self.port), cert, key],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                self.client().list_buckets()
                return self
            except Exception:  # noqa: BLE001 - not up yet
                assert self.proc.poll() is None, "moto_tls.py stopped; see %s" % self.log
                assert time.monotonic() < deadline, "moto over TLS did not start; see %s" % self.log
                time.sleep(0.3)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        self.proc = None

    def client(self):
        import boto3
        import urllib3
        from botocore.config import Config

        urllib3.disable_warnings()
        return boto3.client(
            "s3",
            endpoint_url="https://127.0.0.1:%d" % self.port,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
            verify=False,
            config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30),
        )


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    if docker("image", "inspect", IMAGE, check=False).returncode != 0:
        pytest.fail("%s is missing: run testbed/setup.sh (testbed/build-continuous-image.sh builds it)" % IMAGE)
    root = tmp_path_factory.mktemp("continuous-repo2")
    moto = TlsMoto(str(root)).start()
    bucket = "dsrepo2-%s" % uuid.uuid4().hex[:10]
    moto.client().create_bucket(Bucket=bucket)
    name = "datasafe-test-repo2-%s" % uuid.uuid4().hex[:8]
    repo, conf = root / "repo", root / "conf"
    for path, mode in ((repo, 0o700), (conf, 0o755)):
        path.mkdir()
        path.chmod(mode)
    os.chown(repo, *continuous.image_postgres_ids(run, IMAGE))
    port = free_port()
    repo2 = {
        "bucket": bucket,
        "endpoint": "127.0.0.1",
        "port": moto.port,
        "region": "us-east-1",
        "uri_style": "path",
        "path": "/lms",
        "verify_tls": False,
        "retention_full": 1,
    }
    conf_text = continuous.render_conf(STANZA, port, USER, 2, repo2=repo2)
    (conf / continuous.CONF_NAME).write_text(conf_text)
    (conf / continuous.CONF_NAME).chmod(0o644)
    secrets = {
        "PGBACKREST_REPO2_S3_KEY": "testing",
        "PGBACKREST_REPO2_S3_KEY_SECRET": "testing",
        "PGBACKREST_REPO2_CIPHER_PASS": "throwaway-cipher-%s" % uuid.uuid4().hex,
    }
    command = continuous.with_settings(
        ["postgres", "-c", "listen_addresses=127.0.0.1"], continuous.server_settings(STANZA)
    )
    labels = throwaway_labels()
    docker("volume", "create", *labels, name)
    recovered = []
    try:
        env_args = [arg for key in sorted(secrets) for arg in ("-e", key)]  # values by environment, not argv
        rc, out, err = run(
            [
                "docker", "run", "-d", "--name", name, "--network", "host", *labels, *env_args,
                "-e", "PGPORT=%d" % port, "-e", "POSTGRES_USER=" + USER, "-e", "POSTGRES_DB=" + DB,
                "-e", "POSTGRES_PASSWORD=throwaway-test-password",
                "--mount", "type=volume,source=%s,target=/var/lib/postgresql/data" % name,
                "--mount", "type=bind,source=%s,target=%s" % (repo, continuous.REPO_MOUNT),
                "--mount", "type=bind,source=%s,target=%s,readonly" % (conf, continuous.CONF_MOUNT),
                IMAGE, *command,
            ],
            env=secrets,
        )  # fmt: skip
        assert rc == 0, err
        deadline = time.monotonic() + 180
        while run(["docker", "exec", name, "pg_isready", "-q", "-h", "127.0.0.1", "-U", USER, "-d", DB])[0] != 0:
            assert time.monotonic() < deadline, "the throwaway server did not start"
            time.sleep(0.5)
        time.sleep(1)
        sql(name, "CREATE TABLE probe (id serial PRIMARY KEY, note text NOT NULL);")
        yield {
            "name": name,
            "repo": str(repo),
            "conf": str(conf),
            "conf_text": conf_text,
            "secrets": secrets,
            "bucket": bucket,
            "moto": moto,
            "labels": labels,
            "recovered": recovered,
        }
    finally:
        for other in recovered + [name]:
            docker("rm", "--force", other, check=False)
            docker("volume", "rm", other, check=False)
        moto.stop()


def write_and_archive(bed, note):
    """A committed row whose WAL segment has been archived (to every repository); its id."""
    row = sql(bed["name"], "INSERT INTO probe(note) VALUES ('%s') RETURNING id;" % note)
    segment = sql(bed["name"], "SELECT pg_walfile_name(pg_current_wal_lsn());")[0][0]
    sql(bed["name"], "SELECT pg_switch_wal();")
    deadline = time.monotonic() + 300
    while sql(bed["name"], "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver;")[0][0] < segment:
        assert time.monotonic() < deadline, "segment %s was not archived" % segment
        time.sleep(0.5)
    return int(row[0][0])


def backups_in(bed, key):
    info = continuous.info(run, bed["name"], STANZA)
    return [b for b in info["backup"] if continuous.backup_repo(b) == key]


def bucket_objects(bed):
    client = bed["moto"].client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bed["bucket"]).get("Contents", [])]
    return {k: client.get_object(Bucket=bed["bucket"], Key=k)["Body"].read() for k in keys}


def plain(data):
    """The bytes as stored, and gunzipped when they are gzip (pgBackRest compresses before encrypting)."""
    try:
        return data + gzip.decompress(data)
    except (OSError, EOFError):
        return data


def test_the_conf_file_holds_no_secret_and_names_repo2_encrypted(bed):
    text = bed["conf_text"]
    assert "repo2-type=s3" in text and "repo2-cipher-type=aes-256-cbc" in text
    assert "repo2-s3-uri-style=path" in text and "repo2-storage-verify-tls=n" in text
    for value in bed["secrets"].values():
        assert value not in text
    assert "cipher-pass" not in text and "s3-key" not in text


def test_a_backup_goes_to_both_and_recovery_from_s3_alone_has_every_committed_row(bed):
    marker = "plaintext-marker-%s" % uuid.uuid4().hex
    before = int(sql(bed["name"], "INSERT INTO probe(note) VALUES ('%s') RETURNING id;" % marker)[0][0])
    result = run_module("continuous_backup", container=bed["name"], stanza=STANZA, type="auto")
    assert not result["failed"], result.get("msg")
    assert result["stanza_created"]
    assert sorted(result["repos"]) == ["1", "2"], result["repos"]
    for key in ("1", "2"):
        done = result["repos"][key]
        assert done["error"] is None and done["type"] == "full", done
        assert done["backup"]["repo"] == int(key) and done["verify"] is not None
        assert result["summary"]["repos"][key]["full"]["label"] == done["backup"]["label"]
    assert len(backups_in(bed, 1)) == 1 and len(backups_in(bed, 2)) == 1
    # a second run has a good full backup in each repository: nothing to do
    again = run_module("continuous_backup", container=bed["name"], stanza=STANZA, type="auto")
    assert not again["failed"] and not again["changed"] and again["repos"] == {}, again

    after = [write_and_archive(bed, "%s after the backup %d" % (marker, i)) for i in range(3)]
    committed = [int(r[0]) for r in sql(bed["name"], "SELECT id FROM probe ORDER BY id;")]
    assert before in committed and set(after) <= set(committed)

    # the server is lost: its local repository is gone; only S3 and the secrets are left
    aside = bed["repo"] + ".moved-away"
    os.rename(bed["repo"], aside)
    name = "%s-rec-s3" % bed["name"]
    bed["recovered"].append(name)
    try:
        args = dict(
            name=name,
            image=IMAGE,
            stanza=STANZA,
            repo_dir=bed["repo"],
            conf_dir=bed["conf"],
            port=free_port(),
            database=DB,
            user=USER,
            tables=["probe"],
            live_container=bed["name"],  # the secrets come from its environment
            repo=2,
            labels=bed["labels"][1::2],
            timeout=900,
        )
        got = run_module("continuous_recover", args)
    finally:
        os.rename(aside, bed["repo"])
    assert not got["failed"], got
    assert got["repo"] == 2 and got["counts"]["probe"] == len(committed), got
    assert [int(r[0]) for r in sql(name, "SELECT id FROM probe ORDER BY id;")] == committed
    mounts = docker("inspect", "--format", "{{range .Mounts}}{{.Destination}} {{end}}", name).stdout.split()
    assert continuous.REPO_MOUNT not in mounts, "recovery from S3 must not see the local repository: %s" % mounts
    # no secret ever reached argv: the container's command line holds none
    inspect = docker("inspect", "--format", "{{json .Args}} {{json .Config.Cmd}}", name).stdout
    assert not any(v in inspect for v in bed["secrets"].values())

    # the bucket holds the backup and the WAL, encrypted: the marker is in the local WAL, never in S3
    objects = bucket_objects(bed)
    assert any("/archive/%s/" % STANZA in k for k in objects) and any("/backup/%s/" % STANZA in k for k in objects)
    local = b""
    for root, _dirs, files in os.walk(os.path.join(bed["repo"], "archive")):
        for f in files:
            with open(os.path.join(root, f), "rb") as handle:
                local += plain(handle.read())
    assert marker.encode() in local, "the marker must be findable where the data is not encrypted"
    leaked = [k for k, data in objects.items() if marker.encode() in plain(data)]
    assert not leaked, "plaintext table data in S3 objects: %s" % leaked
    wal = [data for k, data in objects.items() if "/archive/%s/" % STANZA in k and k.endswith(".gz")]
    assert wal and all(data[:8] == b"Salted__" for data in wal), "repo2 WAL is not aes-256-cbc encrypted"


def test_retention_runs_per_repository(bed):
    first = {key: [b["label"] for b in backups_in(bed, key)] for key in (1, 2)}
    write_and_archive(bed, "before the second full backup")
    result = run_module("continuous_backup", container=bed["name"], stanza=STANZA, type="full")
    assert not result["failed"], result.get("msg")
    second = {key: result["repos"][str(key)]["backup"]["label"] for key in (1, 2)}
    # repo1-retention-full=2 keeps both full backups, repo2-retention-full=1 only the newest
    assert [b["label"] for b in backups_in(bed, 1)] == first[1] + [second[1]]
    assert [b["label"] for b in backups_in(bed, 2)] == [second[2]]


def test_with_s3_unreachable_the_backup_fails_naming_repository_2_and_repository_1_stays_good(bed):
    write_and_archive(bed, "before S3 went away")
    good_before = [b["label"] for b in backups_in(bed, 1)]
    # S3 is unreachable; pgBackRest would retry each request for its io-timeout (60 s) per file
    # it tries: 5 s here keeps the test short, the behaviour is the same
    with open(os.path.join(bed["conf"], continuous.CONF_NAME), "a") as handle:
        handle.write("io-timeout=5\n")
    bed["moto"].stop()
    result = run_module("continuous_backup", container=bed["name"], stanza=STANZA, type="diff", check=False)
    assert result["failed"], result
    assert "repository 2 (off-site, S3)" in result["msg"], result["msg"]
    one, two = result["repos"]["1"], result["repos"]["2"]
    assert two["error"].startswith("repository 2 (off-site, S3)") and two["backup"] is None, two
    assert "unable to connect" in two["error"], two
    if one["error"] is None:
        # repository 1's backup of the same run completed: listed good and verified
        assert one["verify"] is not None and "still good: repository 1 (local): diff backup" in result["msg"]
    else:
        # archive-push pushes each segment to every repository and fails while one is unreachable
        # (PostgreSQL keeps the segment and retries), so the backup's own WAL can miss its wait in
        # repository 1 too: that backup is then not listed, and the error names repository 1
        assert one["error"].startswith("repository 1 (local)") and "was not archived" in one["error"], one
    # either way nothing good in repository 1 was marked bad, and it verifies
    listed = continuous.info(run, bed["name"], STANZA, repo=1)["backup"]
    assert [b["label"] for b in listed][: len(good_before)] == good_before
    assert not any(b["error"] for b in listed)
    if one["error"] is None:
        assert listed[-1]["label"] == one["backup"]["label"] and listed[-1]["type"] == "diff"
    continuous.verify(run, bed["name"], STANZA, repo=1)  # raises naming any damage
