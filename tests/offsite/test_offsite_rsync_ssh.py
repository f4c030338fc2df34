"""rsync over ssh, the usual off-site target: a real sshd on a loopback port, throwaway keys.

The sshd (fixture ``sshd``, conftest.py) runs for this module only, listening on 127.0.0.1 with
its own host key; the client checks that host key (StrictHostKeyChecking=yes against a
known_hosts written there), so a wrong host is refused, as it would be in production.
"""

import os

from harness import run_module as run
from offsite_helpers import keygen, local_hashes, sha256_of
from pgbed import flip_byte


def remote_args(sshd, backup_dir, dest):
    return dict(
        target="rsync",
        dest="root@127.0.0.1:%s/" % dest,
        rsync_ssh_args=sshd.ssh_args,
        backup_dir=backup_dir,
    )


def test_a_copy_over_ssh_arrives_checksum_verified_and_is_not_repeated(sshd, backup_dir, tmp_path):
    before = local_hashes(backup_dir)
    dest = tmp_path / "backuphost"
    dest.mkdir()
    first = run("offsite_copy", remote_args(sshd, backup_dir, dest))
    assert not first["failed"], first["msg"]
    assert first["changed"] and len(first["copied"]) == 2
    for item in first["copied"]:
        assert sha256_of(dest / item["file"]) == before[item["file"]]
    again = run("offsite_copy", remote_args(sshd, backup_dir, dest))
    assert not again["failed"] and not again["changed"]
    assert local_hashes(backup_dir) == before


def test_a_remote_copy_that_was_damaged_is_found_and_replaced(sshd, backup_dir, tmp_path):
    before = local_hashes(backup_dir)
    dest = tmp_path / "backuphost"
    dest.mkdir()
    assert not run("offsite_copy", remote_args(sshd, backup_dir, dest))["failed"]
    damaged = sorted(n for n in os.listdir(dest) if n.endswith(".sql.gz"))[0]
    flip_byte(dest / damaged, 100)
    repaired = run("offsite_copy", remote_args(sshd, backup_dir, dest))
    assert not repaired["failed"], repaired["msg"]
    assert [item["file"] for item in repaired["copied"]] == [damaged]
    assert sha256_of(dest / damaged) == before[damaged]
    assert local_hashes(backup_dir) == before


def test_a_host_with_another_key_is_refused_and_nothing_is_copied(sshd, backup_dir, tmp_path):
    before = local_hashes(backup_dir)
    dest = tmp_path / "backuphost"
    dest.mkdir()
    impostor = tmp_path / "known_hosts"
    _, other_key, _ = keygen(tmp_path / "other_host")
    impostor.write_text("[127.0.0.1]:%d ssh-ed25519 %s\n" % (sshd.port, other_key))
    args = remote_args(sshd, backup_dir, dest)
    args["rsync_ssh_args"] = sshd.ssh_args[:-1] + ["UserKnownHostsFile=%s" % impostor]
    result = run("offsite_copy", args)
    assert result["failed"] and result["stage"] in ("check target", "copy")
    assert "Host key verification failed" in result["msg"] or "REMOTE HOST IDENTIFICATION" in result["msg"]
    assert os.listdir(dest) == []
    assert local_hashes(backup_dir) == before
