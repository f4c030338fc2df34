"""The history behind status.yml's HTML report, and its charts' geometry.

The report (roles/datasafe_status/templates/status-report.html.j2, rendered by Jinja2 on the
controller) shows the state as a green/red table and, as charts, the history of the verified
backups' size, duration and critical-table row counts. The history comes from the backups'
manifests (one point per verified backup of the database, oldest first) and the recent events
from the JSON change log. Charts are inline SVG computed here (a polyline and one circle per
point, in a fixed view box), so the report is one self-contained file: no script, no font, no
fetch from the browser. Pure of Ansible: it returns data.
"""

from ansible.module_utils.datasafe import manifest

WIDTH, HEIGHT = 640, 180
LEFT, RIGHT, TOP, BOTTOM = 70, 12, 12, 28
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def history(backup_dir, database, limit=90):
    """The verified backups of ``database`` in ``backup_dir``, oldest first (at most ``limit``,
    the newest kept): end time, file, kind, size, duration and row counts from each manifest."""
    points = []
    for entry in manifest.list_backups(backup_dir):
        data = entry["manifest"]
        if entry["problem"] or not data or data.get("database") != database:
            continue
        counts = data.get("counts") if isinstance(data.get("counts"), dict) else {}
        points.append(
            {
                "end": entry["end"].isoformat(),
                "file": entry["file"],
                "kind": data.get("kind"),
                "size": data.get("size"),
                "duration_seconds": data.get("duration_seconds"),
                "counts": {str(k): v for k, v in counts.items() if isinstance(v, int)},
            }
        )
    points.reverse()  # list_backups is newest first
    return points[-limit:] if limit else points


def _scale(low, high):
    if high == low:
        return low - (abs(low) * 0.1 or 1), high + (abs(high) * 0.1 or 1)
    pad = (high - low) * 0.05
    return max(0, low - pad) if low >= 0 else low - pad, high + pad


def chart(title, unit, labels, series):
    """One line chart: ``labels`` name the points (x, in order); ``series`` is [(name, [value or
    None, ...])]. Returns the title, unit, axis text and per series its polyline and circles
    (x, y, label, value) in a WIDTH x HEIGHT view box."""
    values = [v for _name, vals in series for v in vals if v is not None]
    out = {"title": title, "unit": unit, "width": WIDTH, "height": HEIGHT, "series": [], "points": len(labels)}
    if not values:
        out.update(low=None, high=None, ticks=[])
        return out
    low, high = _scale(min(values), max(values))
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = inner_w / (len(labels) - 1) if len(labels) > 1 else 0

    def x_of(i):
        return round(LEFT + (i * step if len(labels) > 1 else inner_w / 2), 1)

    def y_of(v):
        return round(TOP + inner_h * (1 - (v - low) / (high - low)), 1)

    for n, (name, vals) in enumerate(series):
        circles = [
            {"x": x_of(i), "y": y_of(v), "label": labels[i], "value": v} for i, v in enumerate(vals) if v is not None
        ]
        out["series"].append(
            {
                "name": name,
                "color": PALETTE[n % len(PALETTE)],
                "polyline": " ".join("%s,%s" % (c["x"], c["y"]) for c in circles),
                "circles": circles,
            }
        )
    out.update(
        low=low,
        high=high,
        min=min(values),
        max=max(values),
        ticks=_ticks([low, (low + high) / 2, high], y_of),
        first=labels[0],
        last=labels[-1],
        left=LEFT,
        right=WIDTH - RIGHT,
        top=TOP,
        bottom=HEIGHT - BOTTOM,
    )
    return out


def _number(value, digits=3):
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return "%.*g%s" % (digits, value / size, unit)
    return "%.*g" % (digits, value)


def _ticks(values, y_of):
    """Axis labels, with as many digits as it takes to tell them apart (795k, 795k, 795k is no help)."""
    for digits in range(3, 10):
        texts = [_number(v, digits) for v in values]
        if len(set(texts)) == len(texts):
            break
    return [{"y": y_of(v), "text": t} for v, t in zip(values, texts)]


def charts(points, tables=None):
    """Size, duration and row-count charts of ``points`` (see :func:`history`); ``tables`` are the
    critical tables to draw (default every table the manifests counted)."""
    labels = [p["end"][:16].replace("T", " ") for p in points]
    counted = sorted({t for p in points for t in p["counts"]})
    tables = [t for t in tables or () if t in counted] or counted
    return [
        chart("Backup size", "bytes", labels, [("size", [p["size"] for p in points])]),
        chart("Backup duration", "seconds", labels, [("duration", [p["duration_seconds"] for p in points])]),
        chart(
            "Critical-table row counts",
            "rows",
            labels,
            [(t, [p["counts"].get(t) for p in points]) for t in tables],
        ),
    ]


def build(backup_dir, database, events, tables=None, limit=90, recent=20):
    """Everything the HTML report shows besides the state table: the history, its charts and the
    ``recent`` newest change log events (newest first)."""
    points = history(backup_dir, database, limit)
    shown = [
        {
            "time": e.get("time"),
            "action": e.get("action"),
            "outcome": e.get("outcome"),
            "message": str(e.get("message", ""))[:300],
        }
        for e in reversed(events[-recent:])
    ]
    return {"history": points, "charts": charts(points, tables), "events": shown}
