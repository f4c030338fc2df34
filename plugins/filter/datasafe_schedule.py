"""Filters of the datasafe_schedule role: the nightly job's schedule and command line, written for systemd.

Loaded through ansible.cfg's ``filter_plugins`` (plugins/filter), like every datasafe plugin.

``datasafe_oncalendar`` turns the role's five cron fields into a systemd ``OnCalendar=`` expression
that fires at exactly the same minutes, or refuses with a message naming the variable. It does
not translate cron syntax piecewise: it expands every field into the set of values cron
matches and writes that set back out, so a step, a range or a name cannot be misread.

``datasafe_systemd_exec`` quotes an argv list for ``ExecStart=`` (systemd's own rules, not the
shell's): words with special characters in double quotes with C escapes, ``%`` and ``$`` doubled
so systemd expands neither a specifier nor an environment variable.
"""

import re

from ansible.errors import AnsibleFilterError

MONTHS = {name: n for n, name in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
WEEKDAYS = {name: n for n, name in enumerate("sun mon tue wed thu fri sat".split())}
# (variable, lowest, highest, names) in cron's order; weekday 7 is Sunday, as 0 is.
FIELDS = (
    ("datasafe_schedule_minute", 0, 59, {}),
    ("datasafe_schedule_hour", 0, 23, {}),
    ("datasafe_schedule_day", 1, 31, {}),
    ("datasafe_schedule_month", 1, 12, MONTHS),
    ("datasafe_schedule_weekday", 0, 7, WEEKDAYS),
)
SYSTEMD_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # systemd's order
SAFE_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./$-]+")


def _value(text, variable, low, high, names):
    if text in names:
        return names[text]
    if not text.isdigit():
        raise AnsibleFilterError("%s: '%s' is not a number%s" % (variable, text, " or a name" if names else ""))
    value = int(text)
    if not low <= value <= high:
        raise AnsibleFilterError("%s: %d is outside %d-%d" % (variable, value, low, high))
    return value


def cron_field_values(field, variable, low, high, names):
    """The set of values a cron field matches (``*``, ``a``, ``a-b``, ``*/n``, ``a-b/n``, lists of those)."""
    text = str(field).strip().lower()
    values = set()
    for part in text.split(","):
        base, step = part, 1
        if "/" in part:
            base, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) < 1:
                raise AnsibleFilterError("%s: step '%s' in '%s' is not a positive number" % (variable, step_text, text))
            step = int(step_text)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            first, last = (_value(v, variable, low, high, names) for v in base.split("-", 1))
            if first > last:
                raise AnsibleFilterError("%s: range '%s' runs backwards" % (variable, base))
        elif step != 1:
            raise AnsibleFilterError("%s: '%s' is not a cron step; use a range (a-b/n or */n)" % (variable, part))
        else:
            first = last = _value(base, variable, low, high, names)
        values.update(range(first, last + 1, step))
    if variable == "datasafe_schedule_weekday" and 7 in values:
        values = (values - {7}) | {0}
    return values


def _runs(numbers):
    """Sorted numbers as runs: [(first, last), ...]."""
    runs = []
    for n in sorted(numbers):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return runs


def _two(number):
    return "%02d" % number


def _join(runs, word):
    out = []
    for first, last in runs:
        if last - first >= 2:
            out.append("%s..%s" % (word(first), word(last)))
        else:
            out.extend(word(n) for n in range(first, last + 1))
    return ",".join(out)


def datasafe_oncalendar(minute, hour, day, month, weekday):
    """systemd OnCalendar= for cron's ``minute hour day month weekday``, matching exactly the same minutes."""
    fields = (minute, hour, day, month, weekday)
    sets = [cron_field_values(f, *spec) for f, spec in zip(fields, FIELDS)]
    if str(day).strip() != "*" and str(weekday).strip() != "*":
        raise AnsibleFilterError(
            "datasafe_schedule_day ('%s') and datasafe_schedule_weekday ('%s') are both set: cron runs the job on "
            "days matching EITHER, a systemd timer only on days matching BOTH, so this schedule cannot be written "
            "as a timer. Set one of them to '*', or use datasafe_schedule_method=cron." % (day, weekday)
        )
    parts = []
    for values, (_, low, high, _) in zip(sets, FIELDS):
        full = set(range(low, high + 1)) - ({7} if high == 7 else set())
        parts.append("*" if values == full else _join(_runs(values), _two))
    minute_s, hour_s, day_s, month_s, weekday_s = parts
    if weekday_s != "*":  # cron counts from Sunday (0), systemd from Monday
        weekday_s = _join(_runs((n - 1) % 7 for n in sets[4]), SYSTEMD_WEEKDAYS.__getitem__)
    date = "*-%s-%s" % (month_s, day_s)
    time = "%s:%s:00" % (hour_s, minute_s)
    return ("%s %s %s" % (weekday_s, date, time)) if weekday_s != "*" else "%s %s" % (date, time)


def datasafe_systemd_exec(argv):
    """An argv list as the value of ExecStart= (runs exactly this argv: no shell, no specifiers, no $VARS)."""
    words = [str(a) for a in argv]
    if not words or not words[0].startswith("/"):
        raise AnsibleFilterError("ExecStart needs an absolute program path, got %r" % (words[:1],))
    out = []
    for word in words:
        if any(ord(c) < 32 or ord(c) == 127 for c in word):
            raise AnsibleFilterError("refusing a control character in the job's argument %r" % word)
        if not SAFE_WORD.fullmatch(word):
            word = '"%s"' % word.replace("\\", "\\\\").replace('"', '\\"')
        out.append(word.replace("%", "%%").replace("$", "$$"))
    return " ".join(out)


class FilterModule:
    def filters(self):
        return {"datasafe_oncalendar": datasafe_oncalendar, "datasafe_systemd_exec": datasafe_systemd_exec}
