"""The studies under the lab's store folder, read-only: list, progress, runs, one run's curves.

A study is named by its folder's name directly under the store, and only a folder that
holds a ``results.sqlite`` counts; a name from the page is used only once found in that
list, so the page cannot reach any other file. Values are returned as stored (NaN
included); the app writes non-finite ones as JSON null.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from contextlib import closing
from datetime import datetime
from pathlib import Path

from ..errors import SgdlabError
from ..study.analysis import select_records
from ..study.api import open_study
from ..study.expand import expand
from ..study.spec import StudySpec
from ..study.store import STORE_NAME, Store

RUNNING_WINDOW = 180.0  # seconds since the last stored run within which a partial study counts as running
RATE_WINDOW = 200  # latest stored runs the ETA's rate is measured on


class UnknownStudy(SgdlabError):
    pass


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


class Studies:
    """Read-only access to the studies in ``store`` (a folder of study folders)."""

    def __init__(self, store):
        self.store = Path(store)
        self._lock = threading.Lock()
        self._totals: dict[tuple[str, str], int] = {}
        self._results: dict[str, tuple[tuple, object]] = {}
        self._answers: dict[str, tuple[tuple, list, float]] = {}

    def names(self) -> list[str]:
        if not self.store.is_dir():
            return []
        return sorted(d.name for d in self.store.iterdir()
                      if d.is_dir() and not d.name.startswith(".") and (d / STORE_NAME).is_file())

    def folder(self, name: str) -> Path:
        """The folder of the study called ``name``; :class:`UnknownStudy` if there is none."""
        names = self.names()
        if name not in names:
            raise UnknownStudy(f"no study {name!r} under {self.store}; studies: {', '.join(names) or 'none'}")
        return self.store / name

    # ------------------------------------------------------------------ progress

    def _signature(self, folder: Path) -> tuple:
        """Changes whenever the store is written (the file or its WAL)."""
        sig = []
        for p in (folder / STORE_NAME, folder / (STORE_NAME + "-wal")):
            try:
                st = p.stat()
                sig.append((st.st_mtime_ns, st.st_size))
            except OSError:
                sig.append(None)
        return tuple(sig)

    def _total(self, name: str, st: Store) -> int:
        key = (name, st.digest() or "")
        if key not in self._totals:
            self._totals[key] = len(expand(StudySpec.from_dict(st.spec())))
        return self._totals[key]

    def progress(self, name: str) -> dict:
        """Runs done out of the spec's total, by status, when the last one was stored, an ETA,
        and whether the study looks like it is running (a partial study written to recently)."""
        folder = self.folder(name)
        with Store(folder) as st:
            total = self._total(name, st)
            meta = st.meta()
            statuses = st.statuses()
        counts = dict(Counter(statuses.values()))
        done = len(statuses)
        finished = self._finished_times(folder / STORE_NAME)
        now = time.time()
        last = finished[0] if finished else None
        created = _ts(meta["created"]) if meta.get("created") else None
        recent = max([t for t in (last, created) if t is not None], default=None)
        if done >= total:
            state = "finished"
        elif recent is not None and now - recent < RUNNING_WINDOW:
            state = "running"
        else:
            state = "incomplete"
        eta = None
        if state == "running" and len(finished) >= 2 and finished[0] > finished[-1]:
            rate = (len(finished) - 1) / (finished[0] - finished[-1])  # runs per second lately
            eta = (total - done) / rate
        return {"name": name, "done": done, "total": total, "counts": counts, "state": state,
                "eta_s": eta, "last_stored": last, "created": meta.get("created"),
                "report": (folder / "report.html").is_file(), "spec": meta.get("spec_source")}

    def _finished_times(self, path: Path) -> list[float]:
        """The storage times of the latest runs, newest first (read-only connection)."""
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)) as con:
            rows = con.execute("SELECT finished FROM runs ORDER BY finished DESC LIMIT ?", (RATE_WINDOW,)).fetchall()
        return [_ts(r[0]) for r in rows]

    def summary(self) -> list[dict]:
        out = []
        for name in self.names():
            try:
                out.append(self.progress(name))
            except SgdlabError as e:  # a damaged or foreign store: listed, with its one line
                out.append({"name": name, "error": str(e)})
        return out

    # ------------------------------------------------------------------ results

    def results(self, name: str):
        """:func:`sgdlab.open_study` of the study, cached until its store changes."""
        folder = self.folder(name)
        sig = self._signature(folder)
        with self._lock:
            hit = self._results.get(name)
            if hit is not None and hit[0] == sig:
                return hit[1]
        res = open_study(folder)
        with self._lock:
            self._results[name] = (sig, res)
        return res

    def answers(self, name: str, top: int = 3, max_age: float = 5.0) -> list[dict]:
        """The answers so far: per mode, the best cells at their selected lr (mean validation
        accuracy over the seeds stored so far). Reading every run is the costly part, so a
        running study's answers are recomputed at most every ``max_age`` seconds."""
        folder = self.folder(name)
        sig = self._signature(folder)
        with self._lock:
            hit = self._answers.get(name)
        if hit is not None and (hit[0] == sig or time.monotonic() - hit[2] < max_age):
            return hit[1]
        out = self._compute_answers(name, top)
        with self._lock:
            self._answers[name] = (sig, out, time.monotonic())
        return out

    def _compute_answers(self, name: str, top: int) -> list[dict]:
        by_mode: dict[str, list] = {}
        for sel in select_records(self.results(name).records):  # a selected cell has seeds: its mean is finite
            by_mode.setdefault(sel.cell.mode, []).append(sel)
        out = []
        for mode, sels in by_mode.items():
            for s in sorted(sels, key=lambda s: -s.best.val.mean)[:top]:
                c = s.cell
                out.append({"mode": mode, "cell": f"{c.activation}/{c.output} + {c.cost}, {c.init}",
                            "lr": s.lr, "val_mean": s.best.val.mean, "val_std": s.best.val.std,
                            "seeds": s.best.val.n})
        return out

    def runs(self, name: str) -> list[dict]:
        return self.results(name).rows()

    def record(self, name: str, key: str):
        for r in self.results(name).records:
            if r.key == key:
                return r
        raise UnknownStudy(f"study {name!r} has no run {key!r}")

    def run(self, name: str, key: str) -> dict:
        r = self.record(name, key)
        hist = r.history.to_dict()
        diagnostics = hist.pop("diagnostics")
        return {"key": r.key, "mode": r.mode, "status": r.status, "error": r.error, "engine": r.engine,
                "config": r.config.to_dict(), "history": hist, "diagnostics": diagnostics}
