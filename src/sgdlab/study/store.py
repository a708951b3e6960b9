"""The study store: one SQLite file (``DIR/results.sqlite``, WAL journal) per study.

Tables
------
``meta(key, value)``
    ``schema`` (version), ``spec_toml`` (the spec's text as read), ``spec_source`` (its file
    name), ``spec_overrides`` (JSON: top-level keys replaced on the command line, e.g. by
    ``sgdlab reproduce --seeds``), ``spec_json`` (the
    validated spec, :meth:`StudySpec.to_dict`), ``spec_digest``, ``sgdlab_version``, ``created``, ``machine`` (JSON, :func:`sgdlab.provenance.machine`;
    absent in older stores).
``runs``
    One row per finished run, keyed by ``key`` (:func:`run_key`: mode and config hash):
    ``idx`` (position in the spec's expansion order), ``mode``, ``config_hash``, ``group_id``,
    ``status`` (done | diverged | failed), ``error``, the axis values as plain columns
    (``cost, activation, output, init, lr, momentum, l2, bias_init, seed``; ``output`` is the
    output activation actually used), ``val_acc`` and ``test_acc`` at the final epoch, and as
    JSON: ``config`` (:meth:`RunConfig.to_dict`), ``final`` (:meth:`History.final`),
    ``history`` (:meth:`History.to_dict`), ``test_predictions`` (class index per test row);
    ``engine`` and ``finished`` (UTC time).

``sensitivity`` (optional: stores written before it lack it, and read as "not measured")
    One row per retrained run (:mod:`.sensitivity`): ``key`` (the stored run retrained with
    its training inputs moved by one rounding step), ``result`` (JSON), ``measured``.

The runner writes each schedule group of runs in one transaction, so a killed study leaves
only whole schedule groups behind and the file stays valid. Floats are stored as JSON with Python's
``repr`` and read back bit for bit (NaN included).
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

from ..config import RunConfig
from ..errors import SgdlabError
from ..provenance import machine
from ..train.loop import History
from .records import RunRecord

SCHEMA = 1
STORE_NAME = "results.sqlite"

_CREATE = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    idx INTEGER NOT NULL,
    mode TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    group_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'diverged', 'failed')),
    error TEXT,
    cost TEXT, activation TEXT, output TEXT, init TEXT,
    lr REAL, momentum REAL, l2 REAL, bias_init TEXT, seed INTEGER,
    val_acc REAL, test_acc REAL,
    config TEXT NOT NULL,
    final TEXT NOT NULL,
    history TEXT NOT NULL,
    test_predictions TEXT,
    engine TEXT,
    finished TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_group ON runs (group_id);
"""

_COLUMNS = ("key", "idx", "mode", "config_hash", "group_id", "status", "error", "cost", "activation",
            "output", "init", "lr", "momentum", "l2", "bias_init", "seed", "val_acc", "test_acc", "config",
            "final", "history", "test_predictions", "engine", "finished")


def store_path(path) -> Path:
    """``DIR`` or ``DIR/results.sqlite`` -> the store file's path."""
    p = Path(path)
    return p / STORE_NAME if p.is_dir() or p.suffix != ".sqlite" else p


def _real(x):
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if x == x else None  # NaN -> NULL in the plain columns (the JSON keeps it)


class Store:
    """A study's SQLite store.

    ``Store(path)`` opens an existing store read-only (``path`` is the ``.sqlite`` file or
    the study directory); ``writable=True`` opens it for the runner. :meth:`create` makes a
    new one. Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path, writable: bool = False):
        self.path = store_path(path)
        self.writable = writable
        if not self.path.is_file():
            raise SgdlabError(f"no study store at {self.path} (run `sgdlab study SPEC --out DIR` first)")
        self._con = None
        try:
            if writable:
                self._con = sqlite3.connect(self.path, timeout=30)
                self._con.execute("PRAGMA journal_mode=WAL")
                self._con.execute("PRAGMA synchronous=FULL")
            else:
                self._con = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
            names = {r[0] for r in self._con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as e:
            if self._con is not None:
                self._con.close()
            raise SgdlabError(f"{self.path}: not a readable sgdlab study store ({e})") from None
        if not {"meta", "runs"} <= names:
            self._con.close()
            self._con = None
            raise SgdlabError(f"{self.path}: not an sgdlab study store (no meta/runs tables)")
        schema = self._meta("schema")
        if schema is None or int(schema) > SCHEMA:
            self._con.close()
            self._con = None
            raise SgdlabError(f"{self.path}: store schema {schema!r} is not one this sgdlab reads ({SCHEMA})")

    @classmethod
    def create(cls, path, spec) -> "Store":
        """A new, empty store for ``spec`` (a :class:`StudySpec`); the file must not exist."""
        from .._version import __version__

        p = store_path(path)
        if p.exists():
            raise SgdlabError(f"{p} already exists")
        p.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(p)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            with con:
                con.executescript(_CREATE)
                meta = {"schema": str(SCHEMA), "spec_toml": spec.text, "spec_source": spec.source,
                        "spec_overrides": json.dumps(getattr(spec, "overrides", {}) or {}, sort_keys=True),
                        "spec_json": json.dumps(spec.to_dict(), sort_keys=True), "spec_digest": spec.digest(),
                        "sgdlab_version": __version__,
                        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        # where it is trained (CPU flags, numpy, BLAS): chaotic runs differ across machines
                        "machine": json.dumps(machine(), sort_keys=True)}
                con.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
        finally:
            con.close()
        return cls(p, writable=True)

    # ------------------------------------------------------------------ reading

    def _meta(self, key):
        row = self._con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def spec(self) -> dict:
        """The validated spec as a plain dict (see :meth:`StudySpec.to_dict`)."""
        return json.loads(self._meta("spec_json"))

    def spec_text(self) -> str:
        """The spec's TOML text as it was read when the study started."""
        return self._meta("spec_toml") or ""

    def spec_source(self) -> str:
        return self._meta("spec_source") or "spec"

    def digest(self) -> str:
        return self._meta("spec_digest")

    def meta(self) -> dict:
        return dict(self._con.execute("SELECT key, value FROM meta"))

    def count(self, status: str | None = None) -> int:
        if status is None:
            return self._con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        return self._con.execute("SELECT COUNT(*) FROM runs WHERE status = ?", (status,)).fetchone()[0]

    def statuses(self) -> dict[str, str]:
        """``{key: status}`` of every stored run."""
        return dict(self._con.execute("SELECT key, status FROM runs"))

    def records(self) -> list[RunRecord]:
        """Every stored run, in the spec's expansion order, with its History rebuilt."""
        out = []
        for key, mode, status, error, config, final, history, preds, engine in self._con.execute(
                "SELECT key, mode, status, error, config, final, history, test_predictions, engine "
                "FROM runs ORDER BY idx"):
            out.append(RunRecord(key=key, mode=mode, config=RunConfig.from_dict(json.loads(config)),
                                 status=status, final=json.loads(final),
                                 history=History.from_dict(json.loads(history)), error=error,
                                 test_predictions=None if preds is None else json.loads(preds),
                                 engine=engine))
        return out

    def task_keys(self, key: str) -> list[str]:
        """Keys of the runs written in the same transaction as ``key`` (the task of its group
        that trained it), in expansion order."""
        row = self._con.execute("SELECT group_id, finished FROM runs WHERE key = ?", (key,)).fetchone()
        if row is None:
            return []
        return [k for (k,) in self._con.execute(
            "SELECT key FROM runs WHERE group_id = ? AND finished = ? ORDER BY idx", row)]

    def sensitivity(self) -> dict[str, dict]:
        """``{run key: result}`` of the rounding-sensitivity table; empty in a store without it."""
        names = {r[0] for r in self._con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "sensitivity" not in names:
            return {}
        return {k: json.loads(v) for k, v in self._con.execute("SELECT key, result FROM sensitivity")}

    # ------------------------------------------------------------------ writing

    def write_sensitivity(self, rows: dict[str, dict]) -> None:
        """Insert (or replace) rounding-sensitivity results ``{run key: result}``."""
        if not self.writable:
            raise SgdlabError(f"{self.path}: opened read-only")
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._con:
            self._con.execute("CREATE TABLE IF NOT EXISTS sensitivity "
                              "(key TEXT PRIMARY KEY, result TEXT NOT NULL, measured TEXT NOT NULL)")
            self._con.executemany("INSERT OR REPLACE INTO sensitivity (key, result, measured) VALUES (?, ?, ?)",
                                  [(k, json.dumps(v), now) for k, v in rows.items()])

    def write_schedule_group(self, records: list[RunRecord], group_id: str, indices: dict[str, int],
                    engine: str | None = None) -> None:
        """Insert (or replace) a schedule group's records in one transaction (``group_id``:
        :func:`~sgdlab.study.expand.schedule_id`)."""
        if not self.writable:
            raise SgdlabError(f"{self.path}: opened read-only")
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        rows = []
        for r in records:
            c = r.config
            rows.append((r.key, indices[r.key], r.mode, c.key(), group_id, r.status, r.error, c.cost, c.activation,
                         c.output_activation, c.init, c.lr, c.momentum, c.l2, c.bias_init, c.seed,
                         _real(r.final.get("val_acc")), _real(r.final.get("test_acc")),
                         json.dumps(c.to_dict(), sort_keys=True), json.dumps(r.final),
                         json.dumps(r.history.to_dict()),
                         None if r.test_predictions is None else json.dumps([int(x) for x in r.test_predictions]),
                         r.engine or engine, now))
        marks = ", ".join("?" * len(_COLUMNS))
        with self._con:  # one transaction: all of the schedule group or none of it
            self._con.executemany(f"INSERT OR REPLACE INTO runs ({', '.join(_COLUMNS)}) VALUES ({marks})", rows)

    def replace_spec(self, spec) -> None:
        """Record ``spec`` as the study's spec: a study grown by a spec that only adds runs
        (checked by :func:`sgdlab.study.spec.check_growth` before this is called)."""
        if not self.writable:
            raise SgdlabError(f"{self.path}: opened read-only")
        meta = {"spec_toml": spec.text, "spec_source": spec.source,
                "spec_overrides": json.dumps(getattr(spec, "overrides", {}) or {}, sort_keys=True),
                "spec_json": json.dumps(spec.to_dict(), sort_keys=True), "spec_digest": spec.digest()}
        with self._con:
            self._con.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", meta.items())

    def close(self) -> None:
        if self._con is None:
            return
        if self.writable:
            # Fold the WAL back in so that a closed store is one self-contained file. This
            # needs the only connection; with a reader still open it stays a (valid) WAL store.
            for attempt in range(10):
                try:
                    self._con.execute("PRAGMA journal_mode=DELETE")
                    break
                except sqlite3.OperationalError:
                    time.sleep(0.05)
        self._con.close()
        self._con = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            if getattr(self, "_con", None) is not None:
                self._con.close()
        except Exception:
            pass
