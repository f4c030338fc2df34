"""rsync over ssh, the usual off-site target: a real sshd on a loopback port, throwaway keys.

The sshd runs for this module only, listening on 127.0.0.1 with its own host key; the client
checks that host key (StrictHostKeyChecking=yes against a known_hosts written here), so a
wrong host is refused, as it would be in production.
"""

import os
import socket
import subprocess
import time

import pytest
from harness import run_module as run
from offsite_helpers import local_hashes, sha256_of
from pgbed import flip_byte, free_port

SSHD = "/usr/sbin/sshd"


def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return (path.parent / (path.name + ".pub")).read_text().split()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    home = tmp_path_factory.mktemp("sshd")
    host_key_type, host_key, _ = keygen(home / "host_ed25519")
    client_key = home / "client_ed25519"
    keygen(client_key)
    (home / "authorized_keys").write_text((home / "client_ed25519.pub").read_text())
    port = free_port()
    config = home / "sshd_config"
    config.write_text(
        "\n".join(
            [
                "Port %d" % port,
                "ListenAddress 127.0.0.1",
                "HostKey %s" % (home / "host_ed25519"),
                "AuthorizedKeysFile %s" % (home / "authorized_keys"),
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "UsePAM no",
                "StrictModes no",
                "PidFile %s" % (home / "sshd.pid"),
                "",
            ]
        )
    )
    (home / "known_hosts").write_text("[127.0.0.1]:%d %s %s\n" % (port, host_key_type, host_key))
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation directory
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("sshd did not start: %s" % proc.stderr.read()) from None
            time.sleep(0.1)
    ssh_args = [
        "-p",
        str(port),
        "-i",
        str(client_key),
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "UserKnownHostsFile=%s" % (home / "known_hosts"),
    ]
    try:
        yield {"port": port, "ssh_args": ssh_args, "home": home}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def remote_args(sshd, backup_dir, dest):
    return dict(
        target="rsync",
        dest="root@127.0.0.1:%s/" % dest,
        rsync_ssh_args=sshd["ssh_args"],
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
    impostor.write_text("[127.0.0.1]:%d ssh-ed25519 %s\n" % (sshd["port"], other_key))
    args = remote_args(sshd, backup_dir, dest)
    args["rsync_ssh_args"] = sshd["ssh_args"][:-1] + ["UserKnownHostsFile=%s" % impostor]
    result = run("offsite_copy", args)
    assert result["failed"] and result["stage"] in ("check target", "copy")
    assert "Host key verification failed" in result["msg"] or "REMOTE HOST IDENTIFICATION" in result["msg"]
    assert os.listdir(dest) == []
    assert local_hashes(backup_dir) == before
