"""The Python API for notebooks: open a finished study, get plain records (running one is
:func:`sgdlab.run_study`, in :mod:`sgdlab.workflow`, which also renders the report).

>>> from sgdlab import run_study, open_study             # doctest: +SKIP
>>> res = run_study("my.toml", out="results/my", jobs=2)  # doctest: +SKIP
>>> df = res.to_dataframe()                               # doctest: +SKIP
>>> df.groupby(["mode", "activation", "lr"]).val_acc.mean()  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import SgdlabError
from .records import RunRecord
from .spec import StudySpec, load_spec, parse_spec
from .store import Store, store_path

FINAL_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "epochs",
              "diverged_epoch", "seconds")


@dataclass
class StudyResults:
    """A study's results as read from its store.

    ``spec`` is the validated spec as a dict, ``records`` every stored run
    (:class:`RunRecord`, with its per-epoch :class:`History`), ``out_dir`` the study folder.
    """

    out_dir: Path
    spec: dict
    records: list[RunRecord]

    def rows(self) -> list[dict]:
        """One flat dict per run: key, mode, cost, activation, output (the activation used),
        init, lr, momentum, l2, bias_init, seed, status, the final metrics, the error text and the
        engine that trained it."""
        return [{"key": r.key, "mode": r.mode, "cost": r.config.cost, "ce_outside": r.config.ce_outside,
                 "activation": r.config.activation, "output": r.config.output_activation, "init": r.config.init,
                 "lr": r.config.lr, "momentum": r.config.momentum, "l2": r.config.l2,
                 "bias_init": r.config.bias_init, "seed": r.config.seed, "status": r.status,
                 **{k: r.final.get(k) for k in FINAL_KEYS}, "error": r.error, "engine": r.engine}
                for r in self.records]

    def to_dataframe(self):
        """:meth:`rows` as a pandas DataFrame (needs pandas: ``pip install "sgdlab[pandas]"``)."""
        try:
            import pandas as pd
        except ModuleNotFoundError:
            raise SgdlabError('to_dataframe needs pandas: pip install "sgdlab[pandas]"') from None
        return pd.DataFrame(self.rows())

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        counts = dict(Counter(r.status for r in self.records))
        return (f"StudyResults({self.spec.get('name')!r}, {len(self.records)} runs "
                f"{counts}, out_dir={str(self.out_dir)!r})")


def as_folder(value, name: str) -> Path:
    """A folder argument as a Path; anything but a str or path-like is :class:`SgdlabError`."""
    if isinstance(value, (str, os.PathLike)) and str(value):
        return Path(value)
    raise SgdlabError(f"{name}: expected a folder path (str or pathlib.Path), got {value!r}")


def open_study(directory) -> StudyResults:
    """Read a study's results from ``directory`` (or its ``results.sqlite``); never trains."""
    path = store_path(as_folder(directory, "directory"))
    with Store(path) as st:
        return StudyResults(path.parent, st.spec(), st.records())


def as_spec(spec_or_path) -> StudySpec:
    """A :class:`StudySpec` from a path, TOML text, a dict (parsed TOML) or a StudySpec."""
    if isinstance(spec_or_path, StudySpec):
        return spec_or_path
    if isinstance(spec_or_path, dict):
        from .spec import validate

        return validate(dict(spec_or_path), source="spec")
    if isinstance(spec_or_path, str) and "\n" in spec_or_path:
        return parse_spec(spec_or_path, source="spec")
    if not isinstance(spec_or_path, (str, os.PathLike)):
        raise SgdlabError(f"spec: expected a spec file's path, TOML text, a dict (the parsed TOML) or a StudySpec, "
                          f"got {type(spec_or_path).__name__}")
    return load_spec(spec_or_path)
