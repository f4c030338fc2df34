"""verify.yml and the safe update's preflight report a missing volume pin loudly, on the
package's throwaway deployment; playbooks/pin.yml pins it, and they report it held.

The pin is removed again at the end (state absent), whatever happens: the deployment's own
teardown removes its volume, which a pin would hold.
"""

from ansible.module_utils.datasafe import container, pin
from opbed import play, recap


def flat(proc):
    return " ".join(proc.stdout.split())  # messages may be folded over lines


def test_verify_and_the_preflight_warn_without_a_pin_and_see_it_once_pinned(lms, tmp_path):
    # A fresh deployment's PostgreSQL log may hold "the database system is starting up" from an
    # early healthcheck; verify's log scan would fail on it, which is not what this test is about.
    inventory = lms.inventory(
        tmp_path / "hosts.yml",
        datasafe_pin_labels={"io.datasafe.test": "1"},
        datasafe_verify_log_ignore=["the database system is starting up"],
    )
    volume = "%s_postgres_data" % lms.project
    try:
        proc = play(inventory, "verify.yml")
        assert proc.returncode == 0, proc.stdout[-4000:]
        assert "VOLUME NOT PINNED" in flat(proc) and "pin: MISSING" in flat(proc)
        proc = play(inventory, "verify.yml", "-e", "datasafe_pin_required=true")
        assert proc.returncode != 0 and "VOLUME NOT PINNED" in flat(proc)
        plan = play(inventory, "safe_update.yml", "--check")
        assert plan.returncode == 0 and "VOLUME NOT PINNED" in flat(plan), plan.stdout[-4000:]

        proc = play(inventory, "pin.yml")
        assert proc.returncode == 0 and recap(proc.stdout)["changed"] == 1, proc.stdout[-4000:]
        assert pin.status(container.subprocess_runner, volume)["pinned"]
        proc = play(inventory, "verify.yml", "-e", "datasafe_pin_required=true")
        assert proc.returncode == 0, proc.stdout[-4000:]
        assert "pin: running" in flat(proc) and "VOLUME NOT PINNED" not in flat(proc)
        plan = play(inventory, "safe_update.yml", "--check")
        assert plan.returncode == 0 and "VOLUME NOT PINNED" not in flat(plan), plan.stdout[-4000:]
    finally:
        play(inventory, "pin.yml", "-e", "datasafe_pin_state=absent")
        assert not pin.status(container.subprocess_runner, volume)["exists"]
