"""report.html renders in a real browser: headless Chromium loads it from disk and every
<img> decodes (non-zero natural size).

A copy of the page gets a small inline script that, after the load event, writes the
count of images and of decoded images into the DOM; ``--dump-dom`` prints it. The report
itself carries no script.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_report import tiny_study  # noqa: E402  (the tiny study, rendered once per session)

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)

PROBE = """<script>
window.addEventListener("load", function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (imgs[i].complete && imgs[i].naturalWidth > 0 && imgs[i].naturalHeight > 0) ok++;
  }
  var d = document.createElement("div");
  d.id = "probe";
  d.textContent = "images=" + imgs.length + " decoded=" + ok;
  document.body.appendChild(d);
});
</script>"""


def chromium(args, tmp_path, timeout=90):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-extensions", f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (CI installs the Debian package 'chromium')")
def test_every_image_decodes_in_chromium(tmp_path):
    study = tiny_study()
    html = (study / "report.html").read_text()
    n_png = len(list((study / "figures").glob("*.png")))
    assert n_png >= 6
    page = tmp_path / "report_probe.html"
    page.write_text(html.replace("</body>", PROBE + "</body>"))
    res = chromium(["--virtual-time-budget=15000", "--dump-dom", page.as_uri()], tmp_path)
    m = re.search(r"images=(\d+) decoded=(\d+)", res.stdout)
    assert m, f"no probe result from chromium (rc {res.returncode}): {res.stderr[-2000:]}"
    images, decoded = int(m.group(1)), int(m.group(2))
    assert images == n_png
    assert decoded == images
