"""The study store: one SQLite file (``DIR/results.sqlite``, WAL journal) per study (for
users: ``docs/study.md``, "The store").

``meta(key, value)``
    ``schema``, the spec (``spec_toml`` as read, ``spec_source``, ``spec_overrides``: JSON of
    the top-level keys replaced on the command line, ``spec_json``: :meth:`StudySpec.to_dict`,
    ``spec_digest``), ``sgdlab_version``, ``created``, ``machine``
    (:func:`sgdlab.provenance.machine`) and ``data_digest`` (a SHA-256 of the split dataset:
    ``--resume`` refuses data that differ); the last two are absent in older stores.
``runs``
    One row per finished run (columns in ``_CREATE``), keyed by :func:`run_key`; ``output`` is
    the output activation actually used, ``config``, ``final``, ``history`` and
    ``test_predictions`` are JSON. A run at chance (:func:`sgdlab.engine.diagnostics.at_chance`)
    is a finished run: its ``status`` column says ``done``, its history and ``final`` say
    ``chance``; :meth:`Store.records` gives it status ``chance``.
``diagnostics``
    ``History.diagnostics`` per run key, kept out of ``runs.history`` so that reading the runs
    stays light; added when an older store is opened for writing (resume).
``sensitivity``
    Rounding-sensitivity results per retrained run key (:mod:`.sensitivity`); absent in
    older stores, which read as "not measured".

A store is created in a temporary file and renamed into place, and the runner writes each
schedule group in one transaction, so a kill leaves no store or a valid one holding only
whole groups. A row whose JSON cannot be read back never counts as finished. Floats are
stored as JSON with Python's ``repr`` and read back bit for bit (NaN included).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

from ..config import RunConfig
from ..errors import SgdlabError
from ..provenance import machine
from ..engine.loop import History
from .records import STATUSES, RunRecord

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

# added after schema 1 shipped: created on demand, so older stores still open and resume
_CREATE_DIAGNOSTICS = "CREATE TABLE IF NOT EXISTS diagnostics (key TEXT PRIMARY KEY, diagnostics TEXT NOT NULL)"

_COLUMNS = ("key", "idx", "mode", "config_hash", "group_id", "status", "error", "cost", "activation",
            "output", "init", "lr", "momentum", "l2", "bias_init", "seed", "val_acc", "test_acc", "config",
            "final", "history", "test_predictions", "engine", "finished")


def store_path(path) -> Path:
    """``DIR`` or ``DIR/results.sqlite`` -> the store file's path."""
    p = Path(path)
    return p / STORE_NAME if p.is_dir() or p.suffix != ".sqlite" else p


def _spec_meta(spec) -> dict:
    """The ``meta`` rows that describe the study's spec."""
    return {"spec_toml": spec.text, "spec_source": spec.source,
            "spec_overrides": json.dumps(getattr(spec, "overrides", {}) or {}, sort_keys=True),
            "spec_json": json.dumps(spec.to_dict(), sort_keys=True), "spec_digest": spec.digest()}


def _says_chance(final: str) -> bool:
    try:
        return json.loads(final).get("status") == "chance"
    except (TypeError, ValueError, AttributeError):  # a damaged row counts as its status column says
        return False


def _real(x):
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if x == x else None  # NaN -> NULL in the plain columns (the JSON keeps it)


class StoreWriteError(SgdlabError):
    """The store refused a write (full disk, read-only file system, damaged file)."""


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
            self._open()
        except BaseException:
            if self._con is not None:
                self._con.close()
                self._con = None
            raise

    def _open(self) -> None:
        """Connect, and refuse a file that is not a store this sgdlab reads."""
        try:
            if self.writable:
                self._con = sqlite3.connect(self.path, timeout=30)
                self._con.execute("PRAGMA journal_mode=WAL")
                self._con.execute("PRAGMA synchronous=FULL")
            else:
                self._con = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
            names = self._tables()
        except (sqlite3.DatabaseError, OSError) as e:
            raise SgdlabError(f"{self.path}: not a readable sgdlab study store ({e})") from None
        if not {"meta", "runs"} <= names:
            raise SgdlabError(f"{self.path}: not an sgdlab study store (no meta/runs tables)")
        if self.writable and "diagnostics" not in names:
            with self._con:
                self._con.execute(_CREATE_DIAGNOSTICS)
            names.add("diagnostics")
        self._has_diagnostics = "diagnostics" in names
        schema = self._meta("schema")
        try:
            newer = schema is None or int(schema) > SCHEMA
        except ValueError as e:
            raise SgdlabError(f"{self.path}: damaged study store ({e})") from None
        if newer:
            raise SgdlabError(f"{self.path}: store schema {schema!r} is not one this sgdlab reads ({SCHEMA})")

    def _tables(self) -> set[str]:
        return {r[0] for r in self._con.execute("SELECT name FROM sqlite_master WHERE type='table'")}

    @classmethod
    def create(cls, path, spec, data_digest: str | None = None) -> "Store":
        """A new, empty store for ``spec`` (a :class:`StudySpec`); the file must not exist.

        The store is built in a temporary file beside it and renamed into place, so a kill
        during creation leaves either no store or a complete one. ``data_digest``
        (:func:`sgdlab.data.digest.dataset_digest`) is recorded as ``data_digest``.
        """
        from .._version import __version__
        from ..outdir import write_error

        p = store_path(path)
        if p.exists():
            raise SgdlabError(f"{p} already exists")
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
        con = None
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp.unlink(missing_ok=True)
            con = sqlite3.connect(tmp)
            with con:
                con.executescript(_CREATE)
                con.execute(_CREATE_DIAGNOSTICS)
                meta = {"schema": str(SCHEMA), **_spec_meta(spec), "sgdlab_version": __version__,
                        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        # where it is trained (CPU flags, numpy, BLAS): chaotic runs differ across machines
                        "machine": json.dumps(machine(), sort_keys=True)}
                if data_digest is not None:
                    meta["data_digest"] = data_digest
                con.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
            con.close()
            con = None
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, p)
        except (OSError, sqlite3.Error) as e:
            if con is not None:
                con.close()
            tmp.unlink(missing_ok=True)
            if isinstance(e, OSError):
                raise write_error(p.parent, e) from None
            raise SgdlabError(f"cannot create {p}: {e}") from None
        return cls(p, writable=True)

    # ------------------------------------------------------------------ reading

    def _damaged(self, e) -> SgdlabError:
        return SgdlabError(f"{self.path}: damaged study store ({e}); move it away, or start the study over "
                           "with --force")

    def _meta(self, key):
        row = next(self._rows("SELECT value FROM meta WHERE key = ?", (key,)), None)
        return None if row is None else row[0]

    def spec(self) -> dict:
        """The validated spec as a plain dict (see :meth:`StudySpec.to_dict`)."""
        try:
            spec = json.loads(self._meta("spec_json"))
            if not isinstance(spec, dict):
                raise TypeError("not a table")
        except (TypeError, ValueError) as e:
            raise self._damaged(f"its spec metadata is missing or unreadable: {e}") from None
        return spec

    def spec_text(self) -> str:
        """The spec's TOML text as it was read when the study started."""
        return self._meta("spec_toml") or ""

    def spec_source(self) -> str:
        return self._meta("spec_source") or "spec"

    def digest(self) -> str:
        return self._meta("spec_digest")

    def data_digest(self) -> str | None:
        """The digest of the dataset and split the runs were trained on (None in stores made
        before sgdlab recorded it)."""
        return self._meta("data_digest")

    def set_data_digest(self, digest: str) -> None:
        """Record the dataset digest in an older store that has none."""
        with self._con:
            self._con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('data_digest', ?)", (digest,))

    def meta(self) -> dict:
        return dict(self._rows("SELECT key, value FROM meta"))

    def count(self, status: str | None = None) -> int:
        if status is None:
            return next(self._rows("SELECT COUNT(*) FROM runs"))[0]
        return next(self._rows("SELECT COUNT(*) FROM runs WHERE status = ?", (status,)))[0]

    def counts(self) -> dict[str, int]:
        """Stored runs per status as :meth:`records` gives them: ``done``, ``chance``,
        ``diverged``, ``failed`` (a run at chance is stored as ``done``, see the module docstring)."""
        out = {s: self.count(s) for s in ("done", "diverged", "failed")}
        finals = self._rows("SELECT final FROM runs WHERE status = 'done'")
        out["chance"] = sum(_says_chance(final) for (final,) in finals)
        out["done"] -= out["chance"]
        return {s: out[s] for s in STATUSES}

    def statuses(self) -> dict[str, str]:
        """``{key: status}`` of every stored run whose row can be read back; a damaged row
        (unparseable JSON, an unknown status) is left out, so a resume trains it again."""
        out = {}
        for key, status, config, final, history in self._rows(
                "SELECT key, status, config, final, history FROM runs"):
            try:
                RunConfig.from_dict(json.loads(config))
                json.loads(final)
                History.from_dict(json.loads(history))
            except Exception:  # noqa: BLE001 - any damage makes the row not finished
                continue
            out[key] = status
        return out

    def _rows(self, sql, params=()):
        try:
            yield from self._con.execute(sql, params)
        except sqlite3.DatabaseError as e:
            raise self._damaged(e) from None

    def records(self, diagnostics: bool = True) -> list[RunRecord]:
        """Every stored run, in the spec's expansion order, with its History rebuilt (with its
        diagnostics unless ``diagnostics=False``, or the store has none).

        Raises :class:`SgdlabError` (one line, with the count) if some rows cannot be read
        back: ``--resume`` retrains them."""
        out, bad = [], []
        join = diagnostics and self._has_diagnostics
        sql = ("SELECT runs.key, mode, status, error, config, final, history, test_predictions, engine"
               + (", diagnostics.diagnostics FROM runs LEFT JOIN diagnostics ON diagnostics.key = runs.key"
                  if join else ", NULL FROM runs") + " ORDER BY idx")
        for key, mode, status, error, config, final, history, preds, engine, diag in self._rows(sql):
            try:
                h = json.loads(history)
                if diag is not None:
                    h["diagnostics"] = json.loads(diag)
                hist = History.from_dict(h)
                if status == "done" and hist.status == "chance":
                    status = "chance"
                out.append(RunRecord(key=key, mode=mode, config=RunConfig.from_dict(json.loads(config)),
                                     status=status, final=json.loads(final), history=hist, error=error,
                                     test_predictions=None if preds is None else json.loads(preds),
                                     engine=engine))
            except Exception:  # noqa: BLE001 - a damaged row
                bad.append(key)
        if bad:
            raise SgdlabError(f"{self.path}: {len(bad)} of {len(out) + len(bad)} stored runs are damaged and "
                              f"cannot be read (e.g. {bad[0]}); resume the study (--resume) to train them again")
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
        if "sensitivity" not in self._tables():
            return {}
        return {k: json.loads(v) for k, v in self._con.execute("SELECT key, result FROM sensitivity")}

    # ------------------------------------------------------------------ writing

    def _check_writable(self) -> None:
        if not self.writable:
            raise SgdlabError(f"{self.path}: opened read-only")

    def write_sensitivity(self, rows: dict[str, dict]) -> None:
        """Insert (or replace) rounding-sensitivity results ``{run key: result}``."""
        self._check_writable()
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
        self._check_writable()
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        rows, diagnostics = [], []
        for r in records:
            c = r.config
            history = r.history.to_dict()
            diag = history.pop("diagnostics", None)
            if diag:
                diagnostics.append((r.key, json.dumps(diag)))
            status = "done" if r.status == "chance" else r.status  # see the module docstring
            rows.append((r.key, indices[r.key], r.mode, c.key(), group_id, status, r.error, c.cost, c.activation,
                         c.output_activation, c.init, c.lr, c.momentum, c.l2, c.bias_init, c.seed,
                         _real(r.final.get("val_acc")), _real(r.final.get("test_acc")),
                         json.dumps(c.to_dict(), sort_keys=True), json.dumps(r.final),
                         json.dumps(history),
                         None if r.test_predictions is None else json.dumps([int(x) for x in r.test_predictions]),
                         r.engine or engine, now))
        marks = ", ".join("?" * len(_COLUMNS))
        try:
            with self._con:  # one transaction: all of the schedule group or none of it
                self._con.executemany(f"INSERT OR REPLACE INTO runs ({', '.join(_COLUMNS)}) VALUES ({marks})",
                                      rows)
                self._con.executemany("DELETE FROM diagnostics WHERE key = ?", [(r.key,) for r in records])
                self._con.executemany("INSERT INTO diagnostics (key, diagnostics) VALUES (?, ?)", diagnostics)
        except sqlite3.Error as e:
            raise StoreWriteError(f"cannot write to {self.path} ({e})") from None

    def replace_spec(self, spec) -> None:
        """Record ``spec`` as the study's spec: a study grown by a spec that only adds runs
        (checked by :func:`sgdlab.study.spec.check_growth` before this is called)."""
        self._check_writable()
        with self._con:
            self._con.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", _spec_meta(spec).items())

    def close(self) -> None:
        if self._con is None:
            return
        if self.writable:
            # Fold the WAL back in so that a closed store is one self-contained file. This
            # needs the only connection; with a reader still open it stays a (valid) WAL store.
            for _ in range(10):
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
