"""The benchmarks' spread lines: every round's ratio, then min, median and max, above the last line."""

import importlib.util
import os
import subprocess
import sys

import pytest

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "spread.py")
_SPEC = importlib.util.spec_from_file_location("spread", _PATH)
spread = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(spread)


def test_every_round_and_the_spread_of_ratios_and_times():
    out = spread.lines([10.0, 12.0, 11.0], [30.0, 24.0, 44.0], ["2.50", "3.10", "1.00"])
    assert out == [
        "round 1: ratio 0.33 (datasafe 10.0 s / manual 30.0 s)  load 2.50",
        "round 2: ratio 0.50 (datasafe 12.0 s / manual 24.0 s)  load 3.10",
        "round 3: ratio 0.25 (datasafe 11.0 s / manual 44.0 s)  load 1.00",
        "spread: ratio min 0.25 median 0.33 max 0.50; datasafe min 10.0 median 11.0 max 12.0 s; "
        "manual min 24.0 median 30.0 max 44.0 s",
    ]


def test_uneven_rounds_are_refused():
    with pytest.raises(ValueError, match="same number"):
        spread.lines([1.0, 2.0], [1.0])


def test_the_shell_benchmarks_call_it_with_space_separated_lists():
    proc = subprocess.run(
        [sys.executable, _PATH, "2.0 4.0", "10.0 10.0", "0.5 0.7"], capture_output=True, text=True, check=True
    )
    assert proc.stdout.splitlines()[-1] == (
        "spread: ratio min 0.20 median 0.30 max 0.40; datasafe min 2.0 median 3.0 max 4.0 s; "
        "manual min 10.0 median 10.0 max 10.0 s"
    )
