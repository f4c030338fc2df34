"""Every round's ratio and the spread of a benchmark, printed above its last line.

A benchmark's last line is the ratio of the medians; these lines show the noise behind it:

    round 1: ratio 0.38 (datasafe 11.9 s / manual 31.2 s)  load 2.91
    ...
    spread: ratio min 0.36 median 0.38 max 0.43; datasafe min 11.2 median 11.9 max 13.0 s; manual ...

``python bench/spread.py "A1 A2 ..." "B1 B2 ..." ["L1 L2 ..."]`` prints the same lines for a shell
script (times, and optionally each round's load average, as space-separated lists).
"""

import statistics
import sys


def loadavg():
    """The 1-minute load average, as a string ('?' where /proc is not readable)."""
    try:
        with open("/proc/loadavg") as handle:
            return handle.read().split()[0]
    except OSError:
        return "?"


def lines(ours, theirs, loads=None, digits=1, unit="s"):
    """The per-round lines and the spread line for rounds of (datasafe, manual) times."""
    if not ours or len(ours) != len(theirs):
        raise ValueError("need the same number (at least 1) of datasafe and manual times")
    t = "%%.%df" % digits
    out = []
    ratios = [a / b for a, b in zip(ours, theirs)]
    for i, (a, b, r) in enumerate(zip(ours, theirs, ratios)):
        text = ("round %d: ratio %.2f (datasafe " + t + " %s / manual " + t + " %s)") % (i + 1, r, a, unit, b, unit)
        if loads:
            text += "  load %s" % loads[i]
        out.append(text)

    def spread(values, fmt):
        return ("min " + fmt + " median " + fmt + " max " + fmt) % (
            min(values),
            statistics.median(values),
            max(values),
        )

    out.append(
        "spread: ratio %s; datasafe %s %s; manual %s %s"
        % (spread(ratios, "%.2f"), spread(ours, t), unit, spread(theirs, t), unit)
    )
    return out


def main(argv):
    ours = [float(v) for v in argv[1].split()]
    theirs = [float(v) for v in argv[2].split()]
    loads = argv[3].split() if len(argv) > 3 else None
    for line in lines(ours, theirs, loads):
        print(line)


if __name__ == "__main__":
    main(sys.argv)
