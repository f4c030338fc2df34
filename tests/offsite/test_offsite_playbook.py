"""playbooks/offsite.yml through real ansible-playbook: the four steps, a failing target, secrets.

Targets: a bucket on the moto server, a plain directory and an rsync destination (a local path).
"""

import json
import os
import re
import subprocess

from offsite_helpers import REPO, VENV_BIN, local_hashes, sha256_of

SECRET = "s3cr3t-never-logged-7f3a"


def playbook(tmp_path, extra_vars, check=False, verbose=False):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        '      ansible_python_interpreter: "{{ ansible_playbook_python }}"\n'
        "  children:\n    production:\n      hosts:\n        localhost: {}\n"
    )
    variables = tmp_path / "vars.json"
    variables.write_text(json.dumps(extra_vars))
    argv = [
        os.path.join(VENV_BIN, "ansible-playbook"),
        "-i",
        str(inventory),
        "-e",
        "@%s" % variables,
        os.path.join(REPO, "playbooks", "offsite.yml"),
    ]
    if check:
        argv.append("--check")
    if verbose:
        argv.append("-v")
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
        ANSIBLE_FORCE_COLOR="0",
        PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
    )
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    recap = re.search(r"localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", proc.stdout)
    assert recap, proc.stdout + proc.stderr
    return proc, int(recap.group(2))


def vars_for(backup_dir, tmp_path, moto, bucket, **extra):
    nas, rsync = tmp_path / "nas", tmp_path / "rsync"
    nas.mkdir(exist_ok=True)
    rsync.mkdir(exist_ok=True)
    base = {
        "datasafe_backup_dir": backup_dir,
        "datasafe_db_name": "lms_slncity",
        "datasafe_change_log": str(tmp_path / "log" / "change-log.txt"),
        "datasafe_offsite_s3_access_key": "testing",
        "datasafe_offsite_s3_secret_key": SECRET,
        "datasafe_offsite_targets": [
            {
                "name": "s3",
                "type": "s3",
                "bucket": bucket,
                "prefix": "lms/host-1/",
                "endpoint_url": moto.endpoint,
                "region": "us-east-1",
                "verify": "download",
            },
            {"name": "nas", "type": "dir", "path": str(nas), "allow_same_filesystem": True},
            {"name": "backuphost", "type": "rsync", "dest": str(rsync) + "/"},
        ],
    }
    base.update(extra)
    return base


def test_playbook_four_steps_check_copy_then_nothing_to_do(backup_dir, tmp_path, moto):
    bucket = moto.bucket()
    before = local_hashes(backup_dir)
    backups = sorted(n for n in before if n.endswith(".sql.gz"))
    variables = vars_for(backup_dir, tmp_path, moto, bucket)

    proc, changed = playbook(tmp_path, variables, check=True)
    assert proc.returncode == 0, proc.stdout
    assert changed >= 2 and "would copy 2" in proc.stdout
    assert os.listdir(tmp_path / "nas") == [] and moto.client().list_objects_v2(Bucket=bucket)["KeyCount"] == 0

    proc, changed = playbook(tmp_path, variables, verbose=True)
    assert proc.returncode == 0, proc.stdout
    assert changed == 2 and proc.stdout.count("copied 2") == 3  # two copy tasks, three targets
    assert SECRET not in proc.stdout + proc.stderr
    for name in backups:
        assert sha256_of(tmp_path / "nas" / name) == before[name] == sha256_of(tmp_path / "rsync" / name)
    keys = {o["Key"] for o in moto.client().list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {"lms/host-1/" + n for n in backups} | {"lms/host-1/%s.json" % n for n in backups}
    metrics = (tmp_path / "log" / "datasafe_offsite.prom").read_text()
    assert (
        metrics.count("datasafe_offsite_last_run_success{") == 3
        and "} 0\n" not in metrics.split("datasafe_offsite_last_run_timestamp_seconds")[0]
    )
    log = (tmp_path / "log" / "change-log.txt").read_text()
    assert log.count("Copied 2 backup(s) off-site") == 3

    proc, changed = playbook(tmp_path, variables, check=True)
    assert proc.returncode == 0 and changed == 0, proc.stdout
    proc, changed = playbook(tmp_path, variables)
    assert proc.returncode == 0 and changed == 0, proc.stdout
    assert proc.stdout.count("already there and verified 2") == 3
    assert local_hashes(backup_dir) == before


def test_a_failing_target_does_not_stop_the_others_and_fails_loudly(backup_dir, tmp_path, moto):
    before = local_hashes(backup_dir)
    variables = vars_for(backup_dir, tmp_path, moto, "no-such-bucket-offsite")
    proc, _changed = playbook(tmp_path, variables)
    assert proc.returncode != 0
    assert "off-site copy failed for 1 target(s)" in proc.stdout and "no-such-bucket-offsite" in proc.stdout
    assert sorted(n for n in os.listdir(tmp_path / "nas") if n.endswith(".sql.gz")) == sorted(
        n for n in before if n.endswith(".sql.gz")
    )
    assert "FAILED" in (tmp_path / "log" / "change-log.txt").read_text()
    assert local_hashes(backup_dir) == before


def test_bad_target_list_is_refused_before_anything_runs(backup_dir, tmp_path, moto):
    variables = vars_for(backup_dir, tmp_path, moto, "unused", datasafe_offsite_targets=[{"type": "ftp"}])
    proc, changed = playbook(tmp_path, variables)
    assert proc.returncode != 0 and changed == 0
    assert "datasafe_offsite_targets must list" in proc.stdout
    variables = vars_for(backup_dir, tmp_path, moto, "unused", datasafe_offsite_encrypt=True)
    proc, changed = playbook(tmp_path, variables)
    assert proc.returncode != 0 and "datasafe_offsite_age_recipients is empty" in proc.stdout
    assert os.listdir(tmp_path / "nas") == []
