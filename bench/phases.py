"""Per-task wall times of a playbook run, read from the profile_tasks recap (ansible.cfg enables
the callback), so a benchmark can say where its time went."""

import re

_LINE = re.compile(r"^(.*?) -+ (\d+\.\d+)s$")


def task_times(output, minimum=0.0):
    """``[(seconds, task name), ...]`` in the recap's order, for every task of at least ``minimum`` s."""
    recap = output.split("TASKS RECAP")[-1].splitlines()
    times = []
    for line in recap:
        match = _LINE.match(line.strip())
        if match and float(match.group(2)) >= minimum:
            times.append((float(match.group(2)), match.group(1)))
    return times
