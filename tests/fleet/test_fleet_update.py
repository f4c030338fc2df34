"""A rollout that stops at the first broken site, run through bin/datasafe-fleet (ansible-runner).

site1 gets a good release, site2 a release whose health endpoint fails, site3 a good release.
The safe update goes one site at a time: site1 is updated and healthy, site2's update fails
and rolls back to the version it ran, and the rollout stops there: site3 is never reached
(its checkout, its containers and its version are as they were), though a release waits for it.
Every row of every site is still there.
"""

import json
import os
import shutil
import subprocess

import pytest
from fleetbed import LOGS, REPO, SEEDED

pytestmark = pytest.mark.slow

GOOD = {"backend/VERSION": "1.1.0\n"}
BROKEN_HEALTH = {
    "backend/VERSION": "1.3.0\n",
    "backend/lms_backend/app.py": lambda old: old.replace(
        "def health():\n", 'def health():\n    return jsonify(status="broken"), 500\n', 1
    ),
}


def test_the_rollout_stops_at_the_first_site_whose_update_fails(fleet, tmp_path):
    before = {name: fleet.git(name, "rev-parse", "HEAD") for name in fleet.sites}
    site3_started = fleet.started_at("site3")
    assert {name: fleet.health(name)["version"] for name in fleet.sites} == dict.fromkeys(fleet.sites, "1.0.0")
    new = {
        "site1": fleet.push("site1", "release 1.1.0", GOOD),
        "site2": fleet.push("site2", "release 1.3.0 with a broken health endpoint", BROKEN_HEALTH),
        "site3": fleet.push("site3", "release 1.1.0", GOOD),
    }
    report_file = tmp_path / "update-report.json"
    cmd = [os.path.join(REPO, "bin", "datasafe-fleet"), "safe_update", "-i", fleet.inventory]
    cmd += ["--artifacts", str(tmp_path / "runs"), "--report", str(report_file)]
    # The broken release never answers 200: site2 waits 45 s for it, not the
    # role's 300 s (its rollback still waits up to 300 s for the old version); the good sites keep
    # the default, as a loaded machine may need it.
    host_vars = os.path.join(os.path.dirname(fleet.inventory), "host_vars")
    os.makedirs(host_vars, exist_ok=True)
    with open(os.path.join(host_vars, "site2.yml"), "w") as handle:
        handle.write("---\ndatasafe_update_wait_timeout: 45\n")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=fleet.env())
    finally:
        os.remove(os.path.join(host_vars, "site2.yml"))
    fleet.keep_log("datasafe-fleet-safe_update", cmd, proc)
    assert proc.returncode != 0, proc.stdout[-3000:]
    report = json.loads(report_file.read_text())
    # the playbook's own output beside the other logs (pytest's tmp_path is pruned by later runs)
    shutil.copy(os.path.join(report["artifacts"], "stdout"), os.path.join(LOGS, "safe_update-ansible-stdout.log"))
    assert report["status"] == "failed" and report["rc"] == proc.returncode
    assert report["summary"]["changed"] == ["site1"]
    assert report["summary"]["failed"] == ["site2"]
    assert report["summary"]["not reached"] == ["site3"]
    site2 = report["hosts"]["site2"]
    assert site2["why"].startswith("UPDATE FAILED") and "Rolled back to %s" % before["site2"][:12] in site2["why"]
    assert "HTTP 500" in site2["failed"][0]["why"] and site2["rescued"] == 1
    assert "datasafe_update : Put the code back at the recorded revision" in site2["changed"]
    assert report["hosts"]["site1"]["failed"] == [] and report["hosts"]["site3"]["ran"] == []
    # the per-host stream named each site's results as they came
    assert any(line.startswith("site2") and "FAILED" in line for line in proc.stdout.splitlines())
    assert not any(line.startswith("site3 ") for line in proc.stdout.splitlines())

    # site1: updated and healthy
    assert fleet.git("site1", "rev-parse", "HEAD") == new["site1"]
    assert fleet.health("site1") == {"database": "ok", "status": "ok", "version": "1.1.0"}
    # site2: rolled back to what it ran, healthy, its change log says so
    assert fleet.git("site2", "rev-parse", "HEAD") == before["site2"]
    assert fleet.health("site2") == {"database": "ok", "status": "ok", "version": "1.0.0"}
    assert fleet.change_log_events("site2")[-1]["outcome"] == "rolled_back"
    # site3: untouched although its release is waiting on the remote
    assert fleet.git("site3", "rev-parse", "HEAD") == before["site3"] != new["site3"]
    assert fleet.started_at("site3") == site3_started
    assert fleet.health("site3") == {"database": "ok", "status": "ok", "version": "1.0.0"}
    assert fleet.change_log_events("site3") == []
    for name in fleet.sites:
        assert fleet.counts(name) == SEEDED, name
