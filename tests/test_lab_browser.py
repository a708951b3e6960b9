"""sgdlab lab in a real browser: headless Chromium driven by playwright.

``sgdlab lab`` runs as a subprocess on a free loopback port; the test fills the form,
presses Train, watches the accuracy chart gain points while the run is still going, sees
the confusion matrix at the end, trains a second run with another activation onto the same
axes, reruns a stored run of a study, and checks that the page logged no error. The
diagnostics panel is checked against an in-process lab whose engine records diagnostics
in the format of the diagnostics issue. Skipped only where no chromium is installed (CI
installs the Debian package).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "",
                             shutil.which("chromium-browser") or "") if p and os.path.exists(p)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (CI installs the Debian package 'chromium')")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

sys.path.insert(0, str(Path(__file__).parent))
from test_lab import TINY_SPEC, fake_diagnostics_train, free_port  # noqa: E402


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """``sgdlab lab --port 0`` on a store holding one tiny finished study; yields its address."""
    import sgdlab

    store = tmp_path_factory.mktemp("lab-browser-store")
    sgdlab.run_study(TINY_SPEC, out=store / "tiny", jobs=1, progress=False)
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "sgdlab", "lab", "--port", "0", "--store", str(store)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    m = re.search(r"http://127\.0\.0\.1:\d+/", line)
    assert m, f"no address printed: {line!r} {proc.stderr.read() if proc.poll() is not None else ''}"
    yield m.group(0)
    proc.send_signal(2)  # Ctrl-C
    try:
        rc = proc.wait(15)
    finally:
        proc.kill()
    assert rc == 0 and "stopped" in proc.stdout.read()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def open_page(browser, url):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    # a stream the page closes itself (after a run's last event) ends as an aborted request
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} {r.failure}")
            if "ERR_ABORTED" not in (r.failure or "") else None)
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    return page, problems


RECORD = """() => {
  window.__samples = [];
  const tick = () => {
    const c = window.sgdlabLab.charts.acc, card = document.querySelector('#card-A');
    const last = c.data[c.data.length - 1] || [];
    window.__samples.push([card && !card.hidden ? card.dataset.status : null, last.filter(v => v != null).length]);
  };
  window.__rec = setInterval(tick, 15);
}"""


def acc_points(page):
    """Non-null points of each series of the accuracy chart."""
    return page.evaluate("() => window.sgdlabLab.charts.acc.data.slice(1).map(s => s.filter(v => v != null).length)")


def test_train_watch_compare(lab, browser):
    page, problems = open_page(browser, lab)
    # a mistake first: the command line's own message, nothing queued
    page.fill("#f-lr", "0")
    page.click("#train")
    page.wait_for_selector("#form-error:has-text('argument --lr')")
    assert page.inner_text("#form-error") == "argument --lr: expected a number > 0, got '0'"
    assert page.is_hidden("#card-A")
    # the browser logs the refused request itself; that one, and only it, is expected
    assert len(problems) == 1 and "400" in problems[0], problems
    problems.clear()

    page.fill("#f-lr", "0.5")
    page.fill("#f-layers", "32")
    page.fill("#f-epochs", "15")
    page.fill("#f-batch_size", "1")  # slow enough per epoch to be seen growing
    page.evaluate(RECORD)
    page.click("#train")
    page.wait_for_selector("#card-A[data-status='done']", timeout=60000)
    samples = page.evaluate("() => { clearInterval(window.__rec); return window.__samples; }")
    points = [n for status, n in samples if status is not None]  # once run A has a card
    assert points == sorted(points) and points[-1] == 15
    live = {n for status, n in samples if status == "running" and 0 < n < 15}
    assert len(live) >= 2, samples  # points appeared one by one while the run was still going
    assert acc_points(page) == [15, 15]  # train and validation accuracy of run A
    page.wait_for_selector("#card-A .confusion")
    assert page.locator("#card-A .confusion tr").count() == 11  # header + 10 classes
    assert page.locator("#card-A .weights canvas").count() == 32
    assert re.search(r"test \d+\.\d\d %", page.inner_text("#card-A .final"))
    from sgdlab.engine.diagnostics import NAMES

    assert page.locator("#card-A .diag .mini").count() == len(NAMES)  # one chart per recorded metric

    # change the activation, train again: two runs on the same axes
    page.select_option("#f-activation", "tanh")
    page.fill("#f-batch_size", "10")
    page.click("#train")
    page.wait_for_selector("#card-B[data-status='done'], #card-B[data-status='chance']", timeout=60000)  # tanh/tanh + ce may end at chance
    assert acc_points(page) == [15, 15, 15, 15]
    assert "sigmoid/sigmoid" in page.inner_text("#card-A h3") and "tanh/tanh" in page.inner_text("#card-B h3")
    assert "activation tanh (A: sigmoid)" in page.inner_text("#card-B .differs")
    assert page.locator("#card-B .missed canvas").count() >= 1
    assert problems == []
    page.close()


def test_stop_button_cancels(lab, browser):
    page, problems = open_page(browser, lab)
    page.fill("#f-layers", "64")
    page.fill("#f-epochs", "200")
    page.fill("#f-batch_size", "1")
    page.click("#train")
    page.wait_for_selector("#card-A[data-status='running']")
    page.wait_for_function("() => Number(document.querySelector('#card-A').dataset.epochs) >= 1", timeout=30000)
    page.click("#stop")
    page.wait_for_selector("#card-A[data-status='cancelled']", timeout=30000)
    assert int(page.get_attribute("#card-A", "data-epochs")) < 200
    assert page.is_disabled("#stop")
    assert problems == []
    page.close()


def test_studies_open_a_run_and_rerun_it_live(lab, browser):
    page, problems = open_page(browser, lab)
    page.click("nav .tab[data-tab='studies']")
    page.wait_for_selector("#studies-table tr[data-study='tiny']")
    assert "finished" in page.inner_text("#studies-table tr[data-study='tiny']")
    page.click("#studies-table tr[data-study='tiny'] button")
    page.wait_for_selector("#study-progress .progress-line:has-text('8 / 8')")
    page.wait_for_selector("#runs-table tbody tr")
    page.fill("#run-filter", "tanh")
    assert page.locator("#runs-table tbody tr").count() == 4
    page.click("#runs-table tbody tr >> nth=0")
    page.wait_for_selector("#stored-run:not([hidden])")
    page.click("#rerun")
    page.wait_for_selector("#card-B[data-status='done']", timeout=60000)
    assert "stored" in page.inner_text("#card-A h3") and acc_points(page) == [3, 3, 3, 3]
    stored, live = page.evaluate("() => [window.sgdlabLab.slots.A.val_acc, window.sgdlabLab.slots.B.val_acc]")
    assert live == pytest.approx(stored, abs=1e-12)  # the rerun retrains the stored run
    assert problems == []
    page.close()


def test_diagnostics_panel_draws_one_chart_per_metric(tmp_path, browser, monkeypatch):
    import uvicorn

    import sgdlab.lab.training as lab_training
    from sgdlab.lab import create_app

    monkeypatch.setattr(lab_training, "train", fake_diagnostics_train(lab_training.train))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(tmp_path), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        page, problems = open_page(browser, f"http://127.0.0.1:{port}/")
        page.fill("#f-layers", "8")
        page.fill("#f-epochs", "4")
        page.click("#train")
        page.wait_for_selector("#card-A[data-status='chance']", timeout=60000)
        metrics = page.eval_on_selector_all("#card-A .diag .mini", "els => els.map(e => e.dataset.metric)")
        assert sorted(metrics) == ["grad_w_mean", "saturated", "weight_norm"]
        # one line per layer, epochs 0..4 on the x axis
        shape = page.evaluate("""() => Object.fromEntries(Object.entries(window.sgdlabLab.slots.A.diagCharts)
                                   .map(([k, c]) => [k, [c.series.length - 1, c.data[0].length]]))""")
        assert shape == {m: [2, 5] for m in metrics}
        assert page.inner_text("#card-A .diagnosis") == "a one-line diagnosis"
        assert page.is_visible("#card-A .diag-title")
        assert problems == []
        page.close()
    finally:
        server.should_exit = True
        thread.join(10)
