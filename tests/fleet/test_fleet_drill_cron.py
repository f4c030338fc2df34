"""The restore drill's own cron entry does not assume the controller's checkout exists on the host."""

import os
import subprocess

from fleetbed import BIN, REPO

HERE = os.path.dirname(os.path.abspath(__file__))


def crontab():
    proc = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=False)
    return proc.stdout if proc.returncode == 0 else ""


def test_a_drill_entry_for_a_checkout_the_host_lacks_is_refused_and_nothing_is_written():
    before = crontab()
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    cmd = [os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local"]
    cmd += ["-e", "ansible_python_interpreter=" + os.path.join(BIN, "python")]
    cmd.append(os.path.join(HERE, "drill_cron_elsewhere.yml"))
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env, cwd=REPO)
    assert proc.returncode != 0
    out = " ".join((proc.stdout + proc.stderr).split())
    assert "/nonexistent/datasafe-checkout/playbooks/restore_drill.yml" in out, out[-3000:]
    assert "datasafe_schedule_runs_on=controller" in out and "Nothing was changed" in out, out[-3000:]
    assert crontab() == before
