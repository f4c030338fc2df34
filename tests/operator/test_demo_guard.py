"""The demo only touches the demo: testbed/demo_guard.yml (run first by make demo) refuses an
inventory that is not the demo's and a stack whose containers lack the demo's label. Real
ansible-playbook runs; the package's throwaway deployment plays a real, non-demo stack."""

import subprocess
import uuid

from opbed import play
from pgbed import PG_IMAGE, TEST_LABEL

GUARD = "../testbed/demo_guard.yml"


def test_an_inventory_that_is_not_the_demos_is_refused(lms, tmp_path):
    proc = play(lms.inventory(tmp_path / "hosts.yml"), GUARD)
    assert proc.returncode != 0
    assert "is not described by the demo's inventory" in proc.stdout, proc.stdout[-3000:]


def test_a_stack_that_is_not_the_demos_is_refused_and_left_alone(lms, tmp_path):
    # an inventory claiming to be the demo's, pointed at a real (unlabelled) stack
    proc = play(lms.inventory(tmp_path / "hosts.yml", datasafe_demo=True), GUARD)
    assert proc.returncode != 0
    text = " ".join(proc.stdout.split())
    assert "Refusing: %s, %s exist without the demo's label io.datasafe.demo=true" % (lms.backend, lms.db) in text, (
        text[-3000:]
    )
    assert lms.running() == sorted([lms.backend, lms.db])


def test_the_demos_own_labelled_stack_passes(tmp_path):
    name = "dstest-demo-%s" % uuid.uuid4().hex[:8]
    labels = ["--label", "io.datasafe.demo=true", "--label", "%s=1" % TEST_LABEL]
    subprocess.run(["docker", "create", "--name", name, *labels, PG_IMAGE, "true"], capture_output=True, check=True)
    try:
        inventory = tmp_path / "hosts.yml"
        inventory.write_text(
            "all:\n  children:\n    production:\n      hosts:\n        datasafe-demo:\n"
            "          ansible_connection: local\n"
            '          ansible_python_interpreter: "{{ ansible_playbook_python }}"\n'
            "  vars:\n    datasafe_demo: true\n    datasafe_db_container: %s\n    datasafe_compose_project: %s\n"
            % (name, name)
        )
        proc = play(str(inventory), GUARD)
        assert proc.returncode == 0, proc.stdout[-3000:]
    finally:
        # -v: the image declares a data volume, which this container got as an anonymous one
        subprocess.run(["docker", "rm", "-v", name], capture_output=True, check=False)
