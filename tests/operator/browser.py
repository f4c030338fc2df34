"""Render an HTML file in a real headless browser (Debian's chromium) and read what it shows.

The page is copied beside itself with a probe script injected before ``</body>`` (the original
is never changed; its Content-Security-Policy is widened for that inline script only). The probe
runs in the browser after layout and writes, into the DOM that ``--dump-dom`` prints, what a
person would see: each state row's name, text and computed background colour, the verdict's
colour, each chart's drawn points (circles with a non-empty bounding box) and their values, and
every resource the page fetched. Chromium is kept on loopback: a dead loopback proxy, no DNS
(``MAP * ~NOTFOUND``), background networking and component updates off.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile

PROBE = r"""
<script>
(function () {
  function bg(el) { return el ? getComputedStyle(el).backgroundColor : null; }
  var out = {rows: [], charts: [], verdict: null, resources: [], title: document.title};
  var v = document.getElementById('verdict');
  if (v) out.verdict = {text: v.textContent.trim(), background: bg(v)};
  document.querySelectorAll('#state tbody tr').forEach(function (tr) {
    var cell = tr.querySelector('td.state');
    out.rows.push({name: tr.cells[0].textContent.trim(), state: cell.textContent.trim(),
                   background: bg(cell), detail: tr.cells[2].textContent.trim()});
  });
  document.querySelectorAll('figure.chart').forEach(function (fig) {
    var series = [];
    fig.querySelectorAll('g.series').forEach(function (g) {
      var drawn = [];
      g.querySelectorAll('circle.point').forEach(function (c) {
        var box = c.getBBox();
        if (box.width > 0 && box.height > 0) drawn.push(Number(c.getAttribute('data-value')));
      });
      series.push({name: g.getAttribute('data-series'), values: drawn});
    });
    var svg = fig.querySelector('svg');
    out.charts.push({title: fig.getAttribute('data-chart'), series: series,
                     width: svg ? svg.getBoundingClientRect().width : 0,
                     empty: !!fig.querySelector('.empty')});
  });
  performance.getEntriesByType('resource').forEach(function (r) { out.resources.push(r.name); });
  var pre = document.createElement('pre');
  pre.id = 'datasafe-probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
"""

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--window-size=1280,2000",
]


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(argv, workdir, timeout):
    return subprocess.run(
        argv + ["--user-data-dir=" + os.path.join(workdir, "profile")],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def render(path, screenshot=None, timeout=180):
    """What the browser shows of the HTML file ``path`` (the probe's dict); optionally a PNG."""
    with open(path, encoding="utf-8") as handle:
        html = handle.read()
    probed = html.replace("default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';", 1)
    assert "</body>" in probed
    probed = probed.replace("</body>", PROBE + "</body>", 1)
    workdir = tempfile.mkdtemp(prefix="datasafe-browser-")
    try:
        page = os.path.join(workdir, "probed.html")
        with open(page, "w", encoding="utf-8") as handle:
            handle.write(probed)
        proc = _run([chromium(), *FLAGS, "--dump-dom", "file://" + page], workdir, timeout)
        found = re.search(r'<pre id="datasafe-probe">(.*?)</pre>', proc.stdout, re.S)
        assert found, "chromium printed no probe result (exit %s): %s" % (proc.returncode, proc.stderr[-3000:])
        text = found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
        if screenshot:
            _run(
                [chromium(), *FLAGS, "--screenshot=" + screenshot, "file://" + os.path.abspath(path)], workdir, timeout
            )
        return json.loads(text)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


GREEN, RED, GREY = "rgb(26, 127, 55)", "rgb(207, 34, 46)", "rgb(140, 149, 159)"
