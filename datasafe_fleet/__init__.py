"""datasafe's fleet runner: one playbook over many sites through ansible-runner, with a per-host report."""

from datasafe_fleet.runner import FleetError, run_fleet

__all__ = ["FleetError", "run_fleet"]
