"""boto3 on a managed host: playbooks/offsite.yml over SSH to a site whose Python lacks it.

The site is reached over a real sshd on a loopback port (fixture ``sshd``), and its
``ansible_python_interpreter`` is a fresh virtualenv of Debian's ``/usr/bin/python3`` (``python3 -m
venv``): no boto3. The role installs the pinned versions into it with pip from a wheelhouse on the
"site" (``.cache/site-wheels``, filled by ``testbed/setup.sh``), with ``--no-index`` as an
air-gapped site would (the test never reaches off loopback), then uploads to the S3 stand-in
(moto on loopback). With installing switched off, the same site is refused: nothing installed,
nothing uploaded.
"""

import json
import os
import re
import subprocess

import pytest
from harness import run_module
from offsite_helpers import REPO, VENV_BIN, local_hashes, sha256_of

SITE_PYTHON = "/usr/bin/python3"
WHEELS = os.path.join(REPO, ".cache", "site-wheels")
LOGS = "/tmp/datasafe-test-logs/offsite"


@pytest.fixture
def site_venv(tmp_path):
    """A fresh virtualenv on the site, as an operator makes one: pip, no boto3."""
    if not os.path.isdir(WHEELS) or not any(n.startswith("boto3-") for n in os.listdir(WHEELS)):
        pytest.fail("the site's wheelhouse %s is missing: run testbed/setup.sh (testbed/site-wheels.sh)" % WHEELS)
    venv = tmp_path / "site-venv"
    subprocess.run([SITE_PYTHON, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = str(venv / "bin" / "python")
    assert not imports_boto3(python)
    return python


def imports_boto3(python):
    proc = subprocess.run([python, "-c", "import boto3; print(boto3.__version__)"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def freeze(python):
    return subprocess.run([python, "-m", "pip", "freeze", "--all"], capture_output=True, text=True, check=True).stdout


def offsite_over_ssh(tmp_path, sshd, python, variables, check=False, playbook=None):
    """playbooks/offsite.yml (or ``playbook``) against one site over SSH; (process, changed count)."""
    inventory = tmp_path / "hosts.yml"
    site = {
        "ansible_connection": "ssh",
        "ansible_host": "127.0.0.1",
        "ansible_port": sshd.port,
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(sshd.client_key),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=yes -o UserKnownHostsFile=%s" % sshd.known_hosts,
        "ansible_python_interpreter": python,
    }
    inventory.write_text(json.dumps({"all": {"children": {"production": {"hosts": {"site": site}}}}}))
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps(variables))
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", str(inventory), "-e", "@%s" % extra]
    argv += [playbook or os.path.join(REPO, "playbooks", "offsite.yml")] + (["--check"] if check else [])
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(tmp_path / "cp"),
        PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
    )
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    os.makedirs(LOGS, exist_ok=True)
    played = os.path.basename(argv[-2 if check else -1])
    name = "deps-%s-%s-%s.log" % (tmp_path.name, played, "check" if check else "run")
    with open(os.path.join(LOGS, name), "a") as log:
        log.write("$ %s\nexit %d\n%s\n%s\n" % (" ".join(argv), proc.returncode, proc.stdout, proc.stderr))
    recap = re.search(r"site\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=\d+", proc.stdout)
    assert recap, proc.stdout + proc.stderr
    return proc, int(recap.group(1))


def site_vars(backup_dir, tmp_path, moto, bucket, **extra):
    variables = {
        "datasafe_backup_dir": backup_dir,
        "datasafe_db_name": "lms_slncity",
        "datasafe_change_log": str(tmp_path / "log" / "change-log.txt"),
        "datasafe_offsite_s3_access_key": "testing",
        "datasafe_offsite_s3_secret_key": "testing",
        "datasafe_offsite_deps_pip_extra_args": ["--no-index", "--find-links", WHEELS],
        "datasafe_offsite_targets": [
            {
                "name": "s3",
                "type": "s3",
                "bucket": bucket,
                "prefix": "lms/site/",
                "endpoint_url": moto.endpoint,
                "region": "us-east-1",
                "verify": "download",
            }
        ],
    }
    variables.update(extra)
    return variables


def bucket_keys(moto, bucket):
    return sorted(o["Key"] for o in moto.client().list_objects_v2(Bucket=bucket).get("Contents", []))


def test_a_site_without_boto3_gets_the_pinned_one_and_its_backups_arrive_byte_equal(
    sshd, site_venv, backup_dir, tmp_path, moto
):
    bucket = moto.bucket()
    before = local_hashes(backup_dir)
    backups = sorted(n for n in before if n.endswith(".sql.gz"))
    variables = site_vars(backup_dir, tmp_path, moto, bucket)

    # check mode: says what it would install, installs nothing, uploads nothing
    proc, changed = offsite_over_ssh(tmp_path, sshd, site_venv, variables, check=True)
    assert proc.returncode == 0, proc.stdout
    said = " ".join(proc.stdout.split())
    assert changed >= 1 and "would install boto3==1.44.5 botocore==1.44.5" in said
    assert "into %s with pip" % site_venv in said
    assert imports_boto3(site_venv) is None and bucket_keys(moto, bucket) == []

    # the real run: pip installs the pins into the site's virtualenv, then the copy goes up
    proc, changed = offsite_over_ssh(tmp_path, sshd, site_venv, variables)
    assert proc.returncode == 0, proc.stdout
    assert changed == 2  # the install, the copy
    assert imports_boto3(site_venv) == "1.44.5"
    assert "botocore==1.44.5" in freeze(site_venv) and "s3transfer==0.19.3" in freeze(site_venv)
    expected = ["lms/site/" + n for n in backups] + ["lms/site/%s.json" % n for n in backups]
    assert bucket_keys(moto, bucket) == sorted(expected)
    fetched = tmp_path / "fetched"
    fetched.mkdir()
    for name in backups:
        moto.client().download_file(bucket, "lms/site/" + name, str(fetched / name))
        assert sha256_of(fetched / name) == before[name]

    # nothing left to do: no install, no upload
    proc, changed = offsite_over_ssh(tmp_path, sshd, site_venv, variables)
    assert proc.returncode == 0 and changed == 0, proc.stdout
    assert "already there and verified 2" in proc.stdout
    assert local_hashes(backup_dir) == before


def test_install_switched_off_and_boto3_missing_is_refused_with_the_fix(sshd, site_venv, backup_dir, tmp_path, moto):
    bucket = moto.bucket()
    before, packages = local_hashes(backup_dir), freeze(site_venv)
    variables = site_vars(backup_dir, tmp_path, moto, bucket, datasafe_offsite_install_deps=False)
    proc, changed = offsite_over_ssh(tmp_path, sshd, site_venv, variables)
    assert proc.returncode != 0 and changed == 0
    failure = " ".join(proc.stdout.split())  # the message as one line
    assert "off-site copy failed for 1 target(s)" in failure
    assert "S3 targets: boto3 and botocore are not in the Python that runs modules on site (%s)" % site_venv in failure
    assert "nothing was installed and S3 was not touched" in failure
    assert "set datasafe_offsite_install_deps to true" in failure
    assert "%s -m pip install boto3==1.44.5" % site_venv in failure
    assert bucket_keys(moto, bucket) == []
    assert freeze(site_venv) == packages and imports_boto3(site_venv) is None
    assert local_hashes(backup_dir) == before


def test_debians_own_python_is_left_to_apt_and_refused_when_installing_is_off(sshd, backup_dir, tmp_path, moto):
    """The apt branch's decision on a real Debian /usr/bin/python3 (apt itself never runs here)."""
    assert imports_boto3(SITE_PYTHON) is None, "this machine's %s has boto3: the test needs it without" % SITE_PYTHON
    bucket = moto.bucket()
    before = local_hashes(backup_dir)
    variables = site_vars(backup_dir, tmp_path, moto, bucket, datasafe_offsite_install_deps=False)
    proc, changed = offsite_over_ssh(tmp_path, sshd, SITE_PYTHON, variables)
    assert proc.returncode != 0 and changed == 0
    failure = " ".join(proc.stdout.split())
    assert "not in the Python that runs modules on site (%s)" % SITE_PYTHON in failure
    assert "datasafe installs it (apt: python3-boto3)" in failure
    assert "install it yourself: apt-get install python3-boto3 (as root)" in failure
    assert bucket_keys(moto, bucket) == [] and imports_boto3(SITE_PYTHON) is None
    assert local_hashes(backup_dir) == before


def test_reading_offsite_targets_on_a_bare_python(sshd, backup_dir, tmp_path, moto):
    """A directory target needs no boto3; an S3 target is read only after deps.yml (here: refused, apt's Python)."""
    bucket = moto.bucket()
    before = local_hashes(backup_dir)
    nas, dest = tmp_path / "nas", tmp_path / "fetched"
    nas.mkdir()
    dest.mkdir()
    copied = run_module("offsite_copy", target="dir", dest=str(nas), backup_dir=backup_dir, allow_same_filesystem=True)
    assert not copied["failed"] and len(copied["copied"]) == 2, copied  # the target holds what a copy leaves
    variables = site_vars(
        backup_dir,
        tmp_path,
        moto,
        bucket,
        datasafe_offsite_install_deps=False,
        dir_target=str(nas),
        fetch_dest=str(dest),
        # what datasafe_recover_server's dependency asks to be set (nothing is started here)
        datasafe_compose_dir=str(tmp_path / "app"),
        datasafe_compose_project="dstest-offsite-deps",
        datasafe_db_container="dstest-offsite-deps-pg",
        datasafe_db_user="lms_user",
        datasafe_critical_tables=["visits"],
        datasafe_health_url="http://127.0.0.1:9/health",
    )
    fetch_play = os.path.join(os.path.dirname(__file__), "fetch_on_site.yml")
    proc, changed = offsite_over_ssh(tmp_path, sshd, SITE_PYTHON, variables, playbook=fetch_play)
    assert proc.returncode != 0 and changed == 0
    out = " ".join(proc.stdout.split())
    assert "directory target holds lms_backup_20261123_020000.sql.gz lms_backup_20261122_020000.sql.gz" in out
    assert "boto3 and botocore are not in the Python that runs modules on site (%s)" % SITE_PYTHON in out
    assert "apt-get install python3-boto3" in out
    assert os.listdir(dest) == [] and imports_boto3(SITE_PYTHON) is None
    assert local_hashes(backup_dir) == before
