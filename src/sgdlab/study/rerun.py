"""Retrain one stored run of a study exactly as the study trained it (``sgdlab rerun``).

A run is retrained with the engine that produced it (``RunRecord.engine``). The single
engine trains it alone. The batched engine's numbers depend, by float rounding, on the
stack a run was trained in (:func:`sgdlab.engine.batched.plan`), so its whole schedule group
is retrained, as the runner trains it (a resumed study too: the runner retrains the whole
group and keeps the missing runs): every run of the group in the stored spec's expansion
order, through the runner's own :func:`~sgdlab.study.runner.train_group`. On the same
machine the numbers come back bit for bit. (A batched run stored by an sgdlab older than
that rule, in a resumed study, may have shared its stack with fewer runs.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import SgdlabError
from .expand import PlannedRun, expand, schedule_id
from .records import RunRecord
from .store import STORE_NAME, Store

#: the final metrics compared (``seconds`` is wall time, never the same)
COMPARED = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "status", "epochs",
            "diverged_epoch")


@dataclass
class Rerun:
    """A stored run and the same run trained again."""

    stored: RunRecord
    new: RunRecord
    network: object  # the retrained Network (None when the run failed)
    task_size: int  # runs retrained together (1 on the single engine)

    def differences(self) -> list[str]:
        """What differs between the stored and the new run (empty: identical bit for bit)."""
        out = [k for k in COMPARED if _differ(self.stored.final.get(k), self.new.final.get(k))]
        a, b = self.stored.history.to_dict(), self.new.history.to_dict()
        out += [f"history.{k}" for k in a if k != "seconds" and _differ(a[k], b.get(k))]
        if self.stored.test_predictions != self.new.test_predictions:
            out.append("test_predictions")
        return out

    @property
    def identical(self) -> bool:
        return not self.differences()


def _differ(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):  # the per-layer diagnostics
        return a.keys() != b.keys() or any(_differ(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) != len(b) or any(_differ(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return False  # NaN == NaN here: the same "no value"
    return a != b


def find_run(records: list[RunRecord], run: str) -> RunRecord:
    """The record whose key is ``run``, or the one whose key (``mode:hash``) or hash alone
    starts with ``run``; a missing or ambiguous prefix is a one-line :class:`SgdlabError`."""
    exact = [r for r in records if r.key == run]
    if exact:
        return exact[0]
    found = [r for r in records if run and (r.key.startswith(run) or r.key.split(":", 1)[-1].startswith(run))]
    if len(found) == 1:
        return found[0]
    if not found:
        raise SgdlabError(f"no run {run!r} in this study; give a run key (mode:hash, listed in the report's "
                          f"tables/runs.csv) or a unique prefix of it, e.g. {records[0].key[:16]!r}"
                          if records else f"no run {run!r}: the study holds no runs")
    shown = ", ".join(r.key for r in found[:3]) + (", ..." if len(found) > 3 else "")
    raise SgdlabError(f"run {run!r} is ambiguous: {len(found)} runs start with it ({shown}); give more characters")


def rerun(study_dir, run: str) -> Rerun:
    """Retrain the stored run ``run`` (key or unique prefix) of the study in ``study_dir``."""
    from .runner import Task, train_group

    d = Path(study_dir)
    if not (d / STORE_NAME).is_file() and not (d.is_file() and d.suffix == ".sqlite"):
        raise SgdlabError(f"{study_dir}: not a study directory (no {STORE_NAME}; run 'sgdlab study SPEC --out DIR')")
    from .spec import StudySpec

    with Store(d) as st:
        records = st.records()
        stored = find_run(records, run)
        try:
            spec = StudySpec.from_dict(st.spec())
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise st._damaged(f"its spec metadata is incomplete: {type(e).__name__}: {e}") from None
        task_keys = st.task_keys(stored.key)
    engine = stored.engine or "single"
    if stored.status == "failed":
        raise SgdlabError(f"run {stored.key} failed in the study ({stored.error}); there are no numbers to reproduce")
    group = schedule_id(stored.config)
    if engine == "batched":
        runs = tuple(r for r in expand(spec, 10**12) if r.schedule == group)  # the study ran it: no limit here
        if stored.key not in {r.key for r in runs}:  # not in the stored spec's grid: the runs written with it
            by_key = {r.key: r for r in records}
            runs = tuple(PlannedRun(i, by_key[k].mode, by_key[k].config, k, group) for i, k in enumerate(task_keys))
    else:
        runs = (PlannedRun(0, stored.mode, stored.config, stored.key, group),)
    out = train_group(Task(group, runs, engine, keep=(stored.key,)))
    new, net = out[0]
    return Rerun(stored, new, net, len(runs))
