"""sgdlab lab, server side: the app's endpoints through an HTTP client (Starlette's TestClient).

The form is checked against the command line itself (same value, same one-line message),
trainings against ``sgdlab.train`` (same curves), and the queue, cancel and closed-tab
rules against a running app.
"""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import threading
import time

import httpx
import numpy as np
import pytest
from starlette.testclient import TestClient

import sgdlab
from sgdlab.cli import main as cli_main
from sgdlab.lab import create_app
from sgdlab.lab.training import diagnostics_rows

TINY_SPEC = """
name = "tiny"
dataset = "digits"
hidden = [8]
epochs = 3
batch_size = 20
seeds = 2
lr = [0.5, 0.1]
activation = ["sigmoid", "tanh"]
init = "xavier"

[[grid]]
mode = "corrected"
cost = "ce"
output = "sigmoid"
"""


def post(client, path, body=None):
    return client.post(path, content=json.dumps(body if body is not None else {}),
                       headers={"content-type": "application/json"})


def sse_events(text: str) -> list[dict]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


def follow(client, job_id) -> list[dict]:
    """Every event of a job, read from its SSE stream until it ends."""
    with client.stream("GET", f"/api/runs/{job_id}/events") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        return sse_events(r.read().decode())


@pytest.fixture
def client(tmp_path):
    app = create_app(tmp_path / "store", grace=60.0)
    with TestClient(app) as c:
        yield c


# --------------------------------------------------------------------------- the form


def cli_exit_code(argv) -> int:
    """``sgdlab ARGV``'s exit code (argparse's own errors exit; sgdlab's are returned)."""
    try:
        return cli_main(argv)
    except SystemExit as e:
        return e.code


@pytest.mark.parametrize("form, argv", [
    ({"lr": "0"}, ["--lr", "0"]),
    ({"lr": "abc"}, ["--lr", "abc"]),
    ({"layers": "32,x"}, ["--layers", "32,x"]),
    ({"activation": "softsign"}, ["--activation", "softsign"]),
    ({"batch_size": "0"}, ["--batch-size", "0"]),
    ({"epochs": "-3"}, ["--epochs=-3"]),
    ({"seed": "1.5"}, ["--seed", "1.5"]),
    ({"cost": "cce"}, ["--cost", "cce"]),  # RunConfig's rule: cce needs a softmax output
    ({"init": "zeros"}, ["--init", "zeros"]),
    ({"ce_outside": "magic"}, ["--ce-outside", "magic"]),
])
def test_bad_form_value_gives_the_command_lines_message(client, capsys, form, argv):
    r = post(client, "/api/runs", form)
    assert r.status_code == 400
    message = r.json()["error"]
    assert message and "\n" not in message
    assert cli_exit_code(["train", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err, (message, err)


@pytest.mark.parametrize("form, words", [
    ({"epochs": "201"}, "at most 200"),
    ({"layers": "64,64,64,64,64"}, "at most 4 hidden layers"),
    ({"layers": "1000"}, "at most 256 units"),
    ({"dataset": "/etc/passwd"}, "bundled datasets only"),
    ({"dataset": "../results/x.csv"}, "bundled datasets only"),
    ({"optimizer": "adam"}, "unknown field 'optimizer'"),
    ({"lr": {"$gt": 1}}, "expected a text or a number"),
])
def test_lab_limits_and_unknown_fields_are_one_line_4xx(client, form, words):
    r = post(client, "/api/runs", form)
    assert r.status_code == 400 and words in r.json()["error"]
    assert client.get("/api/queue").json()["jobs"] == []  # nothing was queued


def test_form_must_be_json(client):
    r = client.post("/api/runs", data={"lr": "1"})  # what a cross-site HTML form would send
    assert r.status_code == 400 and "application/json" in r.json()["error"]
    assert client.get("/api/queue").json()["jobs"] == []


def test_schema_lists_the_train_commands_choices_and_the_limits(client):
    s = client.get("/api/schema").json()
    fields = {f["name"]: f for f in s["fields"]}
    assert fields["activation"]["choices"] == ["sigmoid", "tanh", "relu", "leaky_relu", "identity"]
    assert fields["layers"]["default"] == "32,16" and fields["lr"]["default"] == 1.0
    assert fields["dataset"]["choices"] == ["digits", "iris", "wine", "breast_cancer"]
    assert fields["ce_outside"]["choices"] == ["clip", "nielsen", "none"]  # the paper's undefined convention
    assert "200 epochs" in s["limits"]["text"]


def test_page_and_assets_are_local(client):
    page = client.get("/")
    assert page.status_code == 200
    assert "content-security-policy" in page.headers and "script-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    assert "http://" not in html and "https://" not in html
    for asset in ("/vendor/uplot/uPlot.iife.min.js", "/vendor/uplot/uPlot.min.css", "/static/lab.js", "/static/lab.css"):
        assert asset in html
        assert client.get(asset).status_code == 200
    for asset in ("/static/lab.js", "/static/lab.css"):  # our own code loads nothing from elsewhere
        assert "http://" not in client.get(asset).text and "https://" not in client.get(asset).text


def test_other_host_headers_are_refused(client):
    assert client.get("/api/schema", headers={"host": "evil.example:8000"}).status_code == 400


# --------------------------------------------------------------------------- training


def test_a_run_streams_one_event_per_epoch_and_matches_train(client):
    r = post(client, "/api/runs", {"layers": "8", "epochs": "4", "lr": "0.5", "seed": "3", "init": "gaussian"})
    assert r.status_code == 202
    events = follow(client, r.json()["id"])
    assert client.get(f"/api/runs/{r.json()['id']}").json()["state"] == "done"  # final once end is read
    kinds = [e["type"] for e in events]
    assert kinds[0] == "queued" and kinds[1] == "start" and kinds[-1] == "end"
    epochs = [e for e in events if e["type"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4]
    assert [e["seq"] for e in events] == list(range(len(events)))
    # the same run through the engine's public API: the same curves, bit for bit
    cfg = sgdlab.RunConfig(hidden=(8,), lr=0.5, seed=3, init="gaussian", epochs=4)
    ref = sgdlab.train(cfg).history
    assert [e["val_acc"] for e in epochs] == ref.val_acc
    assert [e["train_loss"] for e in epochs] == ref.train_loss
    end = events[-1]
    assert end["status"] == "done" and end["final"]["val_acc"] == ref.val_acc[-1]
    cm = np.array(end["confusion"])
    assert cm.shape == (10, 10) and cm.sum() == 359
    assert np.trace(cm) / 359 == pytest.approx(ref.test_acc[-1])
    assert end["n_misclassified"] == 359 - np.trace(cm)
    assert len(end["misclassified"]) == min(8, end["n_misclassified"])
    assert all(len(m["pixels"]) == 64 and m["true"] != m["predicted"] for m in end["misclassified"])
    w = epochs[-1]["weights"]
    assert (w["rows"], w["cols"], w["units"]) == (8, 8, 8) and len(w["images"]) == 8
    assert all(len(img) == 64 and max(map(abs, img)) <= 127 for img in w["images"])
    assert epochs[0]["weights"] != epochs[-1]["weights"]  # the images follow the training


def test_a_diverging_run_ends_diverged(client):
    r = post(client, "/api/runs", {"layers": "16", "epochs": "5", "activation": "relu", "output": "identity",
                                   "cost": "mse", "init": "gaussian", "lr": "10"})
    end = follow(client, r.json()["id"])[-1]
    assert end["type"] == "end" and end["status"] == "diverged" and end["diverged_epoch"] >= 1


def wait_for(predicate, timeout=30.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("timed out")


def test_cancel_stops_a_running_training(client):
    r = post(client, "/api/runs", {"layers": "32", "epochs": "200", "batch_size": "1"})
    job = r.json()["id"]
    wait_for(lambda: client.get(f"/api/runs/{job}").json()["events"] >= 3)  # queued, start, epoch 1
    assert client.get(f"/api/runs/{job}").json()["state"] == "running"
    assert post(client, f"/api/runs/{job}/cancel").status_code == 200
    events = follow(client, job)
    assert events[-1]["type"] == "end" and events[-1]["status"] == "cancelled"
    assert len([e for e in events if e["type"] == "epoch"]) < 200
    assert client.get(f"/api/runs/{job}").json()["state"] == "cancelled"  # final once end is read


def test_cancel_of_a_queued_run_removes_it_from_the_queue(client):
    first = post(client, "/api/runs", {"layers": "32", "epochs": "200", "batch_size": "1"}).json()["id"]
    second = post(client, "/api/runs", {"layers": "8", "epochs": "2"}).json()
    assert second["position"] == 1
    post(client, f"/api/runs/{second['id']}/cancel")
    assert follow(client, second["id"])[-1]["status"] == "cancelled"
    post(client, f"/api/runs/{first}/cancel")
    assert follow(client, first)[-1]["status"] == "cancelled"


def test_the_queue_runs_one_training_at_a_time(client):
    a = post(client, "/api/runs", {"layers": "16", "epochs": "15"}).json()
    b = post(client, "/api/runs", {"layers": "8", "epochs": "3", "activation": "tanh"}).json()
    c = post(client, "/api/runs", {"layers": "8", "epochs": "2", "init": "gaussian"}).json()
    assert (a["position"], b["position"], c["position"]) == (0, 1, 2)
    ev_c, ev_b, ev_a = (follow(client, j["id"]) for j in (c, b, a))
    assert all(e["status"] in ("done", "chance") for e in (ev_a[-1], ev_b[-1], ev_c[-1]))
    start = {k: next(e["t"] for e in ev if e["type"] == "start") for k, ev in zip("abc", (ev_a, ev_b, ev_c))}
    assert start["b"] >= ev_a[-1]["t"] and start["c"] >= ev_b[-1]["t"]  # each began once the one before had ended
    assert [e["position"] for e in ev_b if e["type"] == "queued"] == [1]
    assert [e["position"] for e in ev_c if e["type"] == "queued"] == [2, 1]  # told when it moved up


def test_events_resume_after_last_event_id(client):
    job = post(client, "/api/runs", {"layers": "8", "epochs": "3"}).json()["id"]
    all_events = follow(client, job)
    with client.stream("GET", f"/api/runs/{job}/events", headers={"Last-Event-ID": "2"}) as r:
        rest = sse_events(r.read().decode())
    assert rest == all_events[3:]


# --------------------------------------------------------------------------- the end of a job


def test_the_status_is_final_when_the_end_event_arrives(tmp_path):
    """A page that reads ``end`` and then asks the job's state gets the final one, even
    while the training function is still returning (here held there on purpose)."""
    returned = threading.Event()

    def run(job, emit, check):
        emit({"type": "start", "epochs": 1})
        emit({"type": "end", "status": "diverged", "final": {"val_acc": 0.1}})
        returned.wait(20)  # what follows end in a real run (returning, the worker's own steps)

    with TestClient(create_app(tmp_path, grace=60.0, run=run)) as client:
        try:
            job = post(client, "/api/runs", {"layers": "8", "epochs": "1"}).json()["id"]
            events = follow(client, job)
            assert events[-1]["type"] == "end" and events[-1]["status"] == "diverged"
            status = client.get(f"/api/runs/{job}").json()
            assert status["state"] == "done" and status["events"] == len(events)
            assert [j["state"] for j in client.get("/api/queue").json()["jobs"]] == ["done"]
            post(client, f"/api/runs/{job}/cancel")  # too late: changes nothing
            assert client.get(f"/api/runs/{job}").json()["state"] == "done"
            assert follow(client, job) == events  # a late page replays the same events, end last
        finally:
            returned.set()


class EndSpy:
    """Stands in for a following page's (event loop, asyncio.Event) pair: it is woken, in
    the thread that publishes, right after each event is added, and notes the job's state
    whenever the newest event is ``end``: what a page reading that event could be told."""

    def __init__(self, job):
        self.job, self.states = job, []

    def call_soon_threadsafe(self, callback):
        if self.job.events and self.job.events[-1]["type"] == "end":
            self.states.append(self.job.state)

    def set(self):
        pass


def spy_on(job) -> EndSpy:
    spy = EndSpy(job)
    job.waiters.add((spy, spy))
    return spy


@pytest.mark.parametrize("path, state", [
    ("done", "done"), ("failed", "failed"), ("cancel running", "cancelled"),
    ("cancel queued", "cancelled"), ("shutdown running", "cancelled"), ("shutdown queued", "cancelled"),
])
def test_every_way_a_job_ends_is_final_before_its_end_is_published(path, state):
    from sgdlab.lab.jobs import JobManager

    go = threading.Event()

    def run(job, emit, check):
        emit({"type": "start"})
        if job.label == "blocker" or path.endswith("running"):
            while True:  # a long training, stopped by check()
                check()
                time.sleep(0.005)
        go.wait(20)
        if path == "failed":
            raise RuntimeError("boom")
        emit({"type": "end", "status": "done"})

    manager = JobManager(run, grace=60.0)
    try:
        if path.endswith("queued"):
            blocker = manager.submit(sgdlab.RunConfig(), "blocker")
            wait_for(lambda: blocker.state == "running", timeout=10)
        job = manager.submit(sgdlab.RunConfig(), "the job")
        spy = spy_on(job)
        if path.endswith("running"):
            wait_for(lambda: job.events and job.events[-1]["type"] == "start", timeout=10)
        if path.startswith("cancel"):
            manager.cancel(job, "stopped from the page")
        elif path.startswith("shutdown"):
            manager.close()
        go.set()
        wait_for(lambda: job.finished, timeout=10)
        manager.close()
        manager.join(10)
    finally:
        go.set()
        manager.close()
    assert [e["type"] for e in job.events].count("end") == 1 and job.events[-1]["type"] == "end"
    assert job.state == state
    assert spy.states and set(spy.states) == {state}, spy.states  # never "running" beside an end


# --------------------------------------------------------------------------- diagnostics pass-through


def fake_diagnostics_train(real_train):
    """The engine's train(), with a History that carries per-layer diagnostics in the format
    the diagnostics issue records (rows over epochs, row 0 the initial weights, NaN where a
    metric does not apply): here the weight norm of each layer, a "saturated" share that is
    NaN on the output layer, and a gradient that is recorded on no layer at all."""

    def train(config, data=None, *, on_epoch=None, network=None):
        def norms(net):
            return [float(np.linalg.norm(W)) for W in net.weights]

        initial = norms(network)

        def hook(epoch, history):
            if not getattr(history, "diagnostics", None):
                history.diagnostics = {"weight_norm": [initial], "saturated": [[0.0, float("nan")]],
                                       "grad_w_mean": [[float("nan")] * 2]}
            history.diagnostics["weight_norm"].append(norms(network))
            history.diagnostics["saturated"].append([epoch / 10, float("nan")])
            history.diagnostics["grad_w_mean"].append([float("nan")] * 2)
            if on_epoch:
                on_epoch(epoch, history)

        # the engine's own diagnostics off: this fake supplies them
        result = real_train(config, data, on_epoch=hook, network=network, diagnostics=False)
        result.history.status, result.history.diagnosis = "chance", "a one-line diagnosis"
        return result

    return train


def test_diagnostics_rows_pass_through_in_order(client, monkeypatch):
    import sgdlab.lab.training as lab_training

    monkeypatch.setattr(lab_training, "train", fake_diagnostics_train(lab_training.train))
    job = post(client, "/api/runs", {"layers": "8", "epochs": "3"}).json()["id"]
    events = follow(client, job)
    rows: dict[str, dict[int, list]] = {}
    for e in events:
        for name, got in (e.get("diagnostics") or {}).items():
            for i, row in enumerate(got):
                rows.setdefault(name, {})[e["diag_from"] + i] = row
    assert sorted(rows) == ["grad_w_mean", "saturated", "weight_norm"]
    assert sorted(rows["weight_norm"]) == [0, 1, 2, 3]  # epoch 0 (initial weights) to 3
    assert rows["saturated"][2] == [0.2, None]  # NaN travels as null
    end = events[-1]
    assert end["status"] == "chance" and end["diagnosis"] == "a one-line diagnosis"
    w_last = np.array(rows["weight_norm"][3])
    assert np.all(w_last > 0) and rows["weight_norm"][0] != rows["weight_norm"][3]


def test_no_diagnostics_when_the_history_has_none():
    class H:
        pass

    assert diagnostics_rows(H(), 0) == ({}, 0)
    h = H()
    h.diagnostics = {}
    assert diagnostics_rows(h, 0) == ({}, 0)


# --------------------------------------------------------------------------- closed tab


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_closed_tab_cancels_its_training(tmp_path):
    import uvicorn

    app = create_app(tmp_path, grace=0.5)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: server.started, timeout=20)
        job = httpx.post(f"{base}/api/runs", json={"layers": "32", "epochs": "200", "batch_size": "1"}).json()["id"]
        with httpx.stream("GET", f"{base}/api/runs/{job}/events", timeout=30) as r:
            for line in r.iter_lines():
                if line.startswith("data: ") and json.loads(line[6:])["type"] == "epoch":
                    break  # the tab saw an epoch, then closes
        state = wait_for(lambda: (s := httpx.get(f"{base}/api/runs/{job}").json())["state"] != "running" and s,
                         timeout=20)
        assert state["state"] == "cancelled"
        events = httpx.get(f"{base}/api/runs/{job}/events", timeout=10).text
        end = sse_events(events)[-1]
        assert end["type"] == "end" and end["reason"] == "nobody was watching"
    finally:
        server.should_exit = True
        thread.join(10)


# --------------------------------------------------------------------------- studies


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab-store")
    sgdlab.run_study(TINY_SPEC, out=root / "tiny", jobs=1, progress=False)
    (root / "not-a-study").mkdir()
    (root / "not-a-study" / "notes.txt").write_text("x")
    # a study caught half-way: a copy with some runs taken out
    shutil.copytree(root / "tiny", root / "half")
    con = sqlite3.connect(root / "half" / "results.sqlite")
    with con:
        con.execute("DELETE FROM runs WHERE idx >= 5")
    con.close()
    (root / "tiny" / "report.html").write_text("<html><body>tiny report</body></html>")
    return root


@pytest.fixture
def study_client(store):
    with TestClient(create_app(store, grace=60.0)) as c:
        yield c


def test_studies_are_listed_by_folder_name_only(study_client, store):
    data = study_client.get("/api/studies").json()
    by = {s["name"]: s for s in data["studies"]}
    assert sorted(by) == ["half", "tiny"]
    assert by["tiny"]["state"] == "finished" and by["tiny"]["done"] == by["tiny"]["total"] == 8
    assert by["tiny"]["report"] is True and by["half"]["report"] is False
    assert by["half"]["done"] == 5 and by["half"]["total"] == 8 and by["half"]["state"] == "running"


@pytest.mark.parametrize("name", ["not-a-study", "..", "%2e%2e", "nope", "tiny%2f..%2f..", "%2Fetc"])
def test_no_path_beyond_study_names(study_client, name):
    for url in (f"/api/studies/{name}", f"/api/studies/{name}/runs", f"/studies/{name}/report.html"):
        r = study_client.get(url)
        assert 400 <= r.status_code < 500, url  # "..": the client normalises it away; never a 200


def test_report_is_served_by_study_name(study_client):
    r = study_client.get("/studies/tiny/report.html")
    assert r.status_code == 200 and "tiny report" in r.text
    assert study_client.get("/studies/half/report.html").status_code == 404


def test_study_progress_and_answers_stream(study_client):
    with study_client.stream("GET", "/api/studies/tiny/events") as r:
        text = r.read().decode()
    assert text.rstrip().endswith("event: close\ndata: {}")  # the page closes its EventSource there
    events = sse_events(text)[:-1]
    assert events and events[-1]["state"] == "finished" and events[-1]["done"] == 8
    answers = events[-1]["answers"]
    assert {a["cell"] for a in answers} == {"sigmoid/sigmoid + ce, xavier", "tanh/sigmoid + ce, xavier"}
    assert all(a["seeds"] == 2 and 0 <= a["val_mean"] <= 1 for a in answers)


def test_stored_run_curves_and_rerun_live(study_client, store):
    runs = study_client.get("/api/studies/tiny/runs").json()["runs"]
    assert len(runs) == 8
    ref = {r.key: r for r in sgdlab.open_study(store / "tiny").records}
    key = runs[3]["key"]
    run = study_client.get(f"/api/studies/tiny/runs/{key}").json()
    assert run["history"]["val_acc"] == ref[key].history.val_acc
    assert run["config"] == ref[key].config.to_dict()
    assert study_client.get("/api/studies/tiny/runs/0000notakey").status_code == 404
    job = post(study_client, f"/api/studies/tiny/runs/{key}/rerun").json()
    assert job["source"] == {"study": "tiny", "key": key}
    events = follow(study_client, job["id"])
    live = [e["val_acc"] for e in events if e["type"] == "epoch"]
    assert live == pytest.approx(ref[key].history.val_acc, abs=1e-12)  # the same run, retrained


# --------------------------------------------------------------------------- the command


def test_port_in_use_is_one_line_exit_2(capsys, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert cli_exit_code(["lab", "--port", str(port), "--store", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"cannot listen on 127.0.0.1:{port}" in err


def test_non_loopback_host_warns_and_ctrl_c_stops_cleanly(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "sgdlab", "lab", "--host", "0.0.0.0", "--port", "0",
                             "--store", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        warning = proc.stderr.readline()
        address = proc.stdout.readline()
        assert "warning: listening on 0.0.0.0, not loopback" in warning
        port = int(address.rsplit(":", 1)[1].split("/")[0])
        # a training running when Ctrl-C comes is stopped with it
        job = httpx.post(f"http://127.0.0.1:{port}/api/runs",
                         json={"layers": "64", "epochs": "200", "batch_size": "1"}).json()["id"]
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/api/runs/{job}").json()["state"] == "running")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
        assert "stopped" in proc.stdout.read() and "Traceback" not in proc.stderr.read()
    finally:
        proc.kill()


def test_loopback_names():
    from sgdlab.lab.server import is_loopback

    assert all(map(is_loopback, ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.1.1")))
    assert not any(map(is_loopback, ("0.0.0.0", "192.168.1.4", "example.org", "::")))
