"""Study specs: a TOML file, parsed with :mod:`tomllib` and validated before anything runs.

A spec has study-level settings (shared by every run) and one or more ``[[grid]]`` blocks,
each a named *mode* with axes whose Cartesian product, times the seeds, gives the runs::

    name = "paper"
    dataset = "digits"
    split = [0.6, 0.2, 0.2]
    split_seed = 0
    hidden = [32, 16]
    epochs = 30
    batch_size = 10
    seeds = 5                      # a count (0..4) or a list of seeds
    scale = "auto"                 # feature scaling: auto, none, standard, minmax, divide:K
    lr = [1, 0.1, 0.01]            # an axis at top level is every block's default

    [[grid]]
    mode = "paper"
    cost = ["mse", "ce"]
    activation = ["sigmoid", "tanh", "relu"]
    output = "same"                # a scalar is an axis of one value
    init = ["gaussian", "xavier"]

Every mistake raises :class:`SgdlabError` with one line naming the file and the key, e.g.
``paper.toml: grid[1].lr: must be > 0, got -1`` (blocks are numbered from 1). This module
checks the file's shape (keys, types, lists); the values themselves are checked by
:class:`~sgdlab.config.RunConfig`'s rules (:func:`~sgdlab.config.check_field`), re-raised
under the spec's key.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..choices import CHOICES, pairing_problem
from ..config import KEY_DEFAULTS, ConfigError, check_field
from ..data import BUNDLED
from ..data.datasets import check_label, is_idx_path
from ..errors import SgdlabError

#: study-level settings and their defaults (``None``: optional, unset)
SETTINGS = {
    "name": None,  # default: the file's stem
    "description": "",
    "dataset": "digits",
    "label": None,
    "split": [0.6, 0.2, 0.2],
    "split_seed": 0,
    "hidden": [32, 16],
    "epochs": 30,
    "batch_size": 10,
    "dtype": "float64",
    "seeds": 1,
    "patience": None,
    "scale": "auto",  # feature scaling (sgdlab.data.scale), fitted on the training part
}

#: grid axes in expansion order; ``None``: required (in the block or at top level)
AXES = {
    "cost": None,
    "ce_outside": ["clip"],
    "activation": None,
    "output": ["same"],
    "init": None,
    "momentum": [0.0],
    "l2": [0.0],
    "bias_init": ["normal"],
    "lr": None,
}

BLOCK_KEYS = ("mode", *AXES)
TOP_KEYS = (*SETTINGS, *AXES, "grid")
DEFAULT_MODE = "default"
MODE_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


@dataclass(frozen=True)
class GridBlock:
    """One ``[[grid]]`` block: a mode name and its axes (each a non-empty tuple)."""

    mode: str
    cost: tuple[str, ...]
    ce_outside: tuple[str, ...]
    activation: tuple[str, ...]
    output: tuple[str, ...]
    init: tuple[str, ...]
    momentum: tuple[float, ...]
    l2: tuple[float, ...]
    bias_init: tuple[str, ...]
    lr: tuple[float, ...]

    def to_dict(self) -> dict:
        # an axis added after the first stores is left out at its default (config.KEY_DEFAULTS),
        # so specs written before it existed keep their digest (and their stores stay resumable)
        return {"mode": self.mode, **{a: list(getattr(self, a)) for a in AXES
                                      if not (a in KEY_DEFAULTS and getattr(self, a) == (KEY_DEFAULTS[a],))}}


@dataclass(frozen=True)
class StudySpec:
    """A validated study: settings shared by all runs plus the grid blocks.

    ``source`` is the file name used in messages; ``text`` the TOML text as read (stored
    with the results so a study can be rerun from its own store).
    """

    name: str
    dataset: str
    label: str | None
    split: tuple[float, float, float]
    split_seed: int
    hidden: tuple[int, ...]
    epochs: int
    batch_size: int
    dtype: str
    seeds: tuple[int, ...]
    patience: int | None
    grid: tuple[GridBlock, ...]
    description: str = ""
    source: str = field(default="spec", compare=False)
    text: str = field(default="", compare=False)
    overrides: dict = field(default_factory=dict, compare=False)  # top-level keys replaced after reading
    scale: str = "auto"

    @property
    def modes(self) -> list[str]:
        """Mode names in the order they first appear."""
        return list(dict.fromkeys(b.mode for b in self.grid))

    def to_dict(self) -> dict:
        """The validated spec as plain JSON-able data (what the store keeps)."""
        return {
            "name": self.name, "description": self.description, "dataset": self.dataset,
            "label": self.label, "split": list(self.split), "split_seed": self.split_seed,
            "hidden": list(self.hidden), "epochs": self.epochs, "batch_size": self.batch_size,
            "dtype": self.dtype, "seeds": list(self.seeds), "patience": self.patience,
            "modes": self.modes, "grid": [b.to_dict() for b in self.grid],
            # likewise a setting added after the first stores (config.KEY_DEFAULTS)
            **({} if self.scale == KEY_DEFAULTS["scale"] else {"scale": self.scale}),
        }

    def digest(self) -> str:
        """A stable hash of the validated spec: two specs run the same study iff equal."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, d: dict, source: str = "spec", text: str = "") -> "StudySpec":
        """Rebuild a spec from :meth:`to_dict` output (as read back from a store)."""
        grid = tuple(GridBlock(b["mode"], *(tuple(b.get(a, AXES[a])) for a in AXES)) for b in d["grid"])
        return cls(d["name"], d["dataset"], d["label"], tuple(d["split"]), d["split_seed"],
                   tuple(d["hidden"]), d["epochs"], d["batch_size"], d["dtype"], tuple(d["seeds"]),
                   d["patience"], grid, d.get("description", ""), source, text, scale=d.get("scale", "auto"))


def paper_spec_path() -> Path:
    """The bundled spec of the paper's study (``sgdlab/configs/paper.toml``)."""
    from importlib.resources import files

    return Path(str(files("sgdlab") / "configs" / "paper.toml"))


# --------------------------------------------------------------------------- parsing

MAX_SPEC_BYTES = 1 << 20  # a spec is a few hundred bytes; this only stops a runaway file
MAX_SEEDS = 1_000_000

def load_spec(path, overrides: dict | None = None) -> StudySpec:
    """Read and validate the TOML spec at ``path``.

    ``overrides`` replaces top-level keys before validation (``sgdlab reproduce --seeds``);
    they are validated like the file's own values.
    """
    p = Path(path)
    if not p.is_file():
        raise SgdlabError(f"no such spec file: {path}")
    try:
        size = p.stat().st_size
        if size > MAX_SPEC_BYTES:  # never read a huge file whole just to refuse it
            raise SgdlabError(f"{p.name}: {size:,} bytes; a study spec is at most {MAX_SPEC_BYTES:,} bytes")
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SgdlabError(f"{p.name}: cannot read the spec ({e})") from None
    return parse_spec(text, source=p.name, base_dir=p.parent, overrides=overrides)


def parse_spec(text: str, source: str = "spec", base_dir=None, overrides: dict | None = None) -> StudySpec:
    """Parse and validate spec TOML ``text``; ``source`` names it in error messages."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SgdlabError(f"{source}: not valid TOML: {e}") from None
    if overrides:
        raw = copy.deepcopy(raw)
        raw.update(overrides)
    spec = validate(raw, source=source, base_dir=base_dir, text=text)
    if overrides:
        spec = dataclasses.replace(spec, overrides=dict(overrides))
    return spec


def _err(source, key, message):
    return SgdlabError(f"{source}: {key}: {message}")


def _typename(v):
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(v), type(v).__name__)


def _str(source, key, v):
    if not isinstance(v, str):
        raise _err(source, key, f"expected a string, got {_typename(v)} {v!r}")
    return v


def _field(source, key, field, value):
    """``value`` checked by RunConfig's rule for ``field``; an error names the spec's ``key``."""
    try:
        check_field(field, value)
    except ConfigError as e:
        raise _err(source, key, e.detail) from None
    return value


def _axis(source, key, v, kind):
    """Normalise an axis (scalar or list) to a tuple and check each value."""
    values = v if isinstance(v, list) else [v]
    if not values:
        raise _err(source, key, "empty axis; give at least one value")
    out = []
    for x in values:
        if kind in CHOICES:
            if not isinstance(x, str):
                raise _err(source, key, f"expected strings, got {_typename(x)} {x!r}")
        elif isinstance(x, bool) or not isinstance(x, (int, float)):
            raise _err(source, key, f"expected numbers, got {_typename(x)} {x!r}")
        _field(source, key, kind, x)
        if kind not in CHOICES:
            x = float(x)  # 1 and 1.0 are the same learning rate (and the same run key)
        if x in out:
            raise _err(source, key, f"duplicate value {x!r}")
        out.append(x)
    return tuple(out)


def _beside(base_dir, name: str) -> Path:
    """A data file's path: relative ones are found beside the spec, wherever sgdlab runs."""
    p = Path(name)
    return Path(base_dir) / p if not p.is_absolute() and base_dir is not None else p


def _dataset(source, v, base_dir):
    name = _str(source, "dataset", v)
    if name in BUNDLED:
        return name
    p = _beside(base_dir, name)
    if (p.suffix.lower() in (".csv", ".npz") or is_idx_path(p)) and p.is_file():
        return str(p.resolve())
    raise _err(source, "dataset", f"unknown dataset {name!r}; valid: {', '.join(BUNDLED)}, "
                                  "or an existing .csv/.npz file or IDX images file (relative to the spec)")


def _idx_label(source, label, dataset, base_dir):
    """An IDX dataset's ``label`` is the labels file's path: found relative to the spec, like the data."""
    if label is None or not is_idx_path(dataset):
        return label
    p = _beside(base_dir, label)
    if not p.is_file():
        raise _err(source, "label", f"no such IDX labels file {label!r} (relative to the spec); an IDX "
                                    "dataset's label is the path of its labels file")
    return str(p.resolve())


def validate(raw: dict, source: str = "spec", base_dir=None, text: str = "") -> StudySpec:
    """Check every key of a parsed spec and build a :class:`StudySpec`."""
    for k in raw:
        if k not in TOP_KEYS:
            raise _err(source, k, f"unknown key; valid: {', '.join(TOP_KEYS)}")
    s = {**SETTINGS, **{k: v for k, v in raw.items() if k in SETTINGS}}

    name = s["name"] if s["name"] is not None else Path(source).stem
    name = _str(source, "name", name)
    if not name.strip():
        raise _err(source, "name", "must not be empty")
    from ..outdir import check_name

    try:
        check_name(name)
    except SgdlabError as e:
        raise _err(source, "name", str(e).split(": ", 1)[1]) from None
    description = _str(source, "description", s["description"])
    dataset = _dataset(source, s["dataset"], base_dir)
    label = None if s["label"] is None else _str(source, "label", s["label"])
    if check_label(dataset, label):
        raise _err(source, "label", check_label(dataset, label))
    label = _idx_label(source, label, dataset, base_dir)

    split = s["split"]
    if not isinstance(split, list) or len(split) != 3 or any(
            isinstance(x, bool) or not isinstance(x, (int, float)) for x in split):
        raise _err(source, "split", f"expected three numbers [train, validation, test], got {split!r}")
    split = _field(source, "split", "split", tuple(float(x) for x in split))
    split_seed = _field(source, "split_seed", "split_seed", s["split_seed"])

    hidden = s["hidden"]
    if not isinstance(hidden, list):
        raise _err(source, "hidden",
                   f"expected a list of layer sizes like [32, 16], got {_typename(hidden)} {hidden!r}")
    _field(source, "hidden", "hidden", hidden)
    epochs, batch_size, dtype, patience = (_field(source, k, k, s[k]) for k in ("epochs", "batch_size", "dtype",
                                                                               "patience"))
    scale = _field(source, "scale", "scale", s["scale"])

    seeds = s["seeds"]
    listed = isinstance(seeds, list)
    if listed:
        if not seeds:
            raise _err(source, "seeds", "empty list; give a count or at least one seed")
        for x in seeds:
            _field(source, "seeds", "seed", x)
    elif isinstance(seeds, bool) or not isinstance(seeds, int):
        raise _err(source, "seeds", f"expected a count or a list of seeds, got {_typename(seeds)} {seeds!r}")
    elif seeds < 1:
        raise _err(source, "seeds", f"must be >= 1, got {seeds!r}")
    n_seeds = len(seeds) if listed else seeds
    if n_seeds > MAX_SEEDS:  # checked before a count becomes a tuple of that length
        raise _err(source, "seeds", f"{n_seeds:,} seeds; at most {MAX_SEEDS:,}")
    if listed and len(set(seeds)) != n_seeds:
        raise _err(source, "seeds", f"duplicate seeds in {seeds!r}")
    seeds = tuple(seeds) if listed else tuple(range(seeds))

    defaults = {a: _axis(source, a, raw[a], a) for a in AXES if a in raw}
    implicit = raw.get("grid") is None
    blocks_raw = [{}] if implicit else raw["grid"]  # a flat spec: the top-level axes form one block
    if not isinstance(blocks_raw, list) or not all(isinstance(b, dict) for b in blocks_raw):
        raise _err(source, "grid", "expected [[grid]] blocks (an array of tables)")
    if not blocks_raw:
        raise _err(source, "grid", "no [[grid]] block")
    grid = []
    for i, b in enumerate(blocks_raw, 1):
        where = "grid" if implicit else f"grid[{i}]"
        for k in b:
            if k not in BLOCK_KEYS:
                raise _err(source, f"{where}.{k}", f"unknown key; valid: {', '.join(BLOCK_KEYS)}")
        mode = _str(source, f"{where}.mode", b.get("mode", DEFAULT_MODE))
        if not mode or not set(mode) <= MODE_CHARS:
            raise _err(source, f"{where}.mode", f"use letters, digits, '-' or '_', got {mode!r}")
        axes = {}
        for a, default in AXES.items():
            if a in b:
                axes[a] = _axis(source, f"{where}.{a}", b[a], a)
            elif a in defaults:
                axes[a] = defaults[a]
            elif default is not None:
                axes[a] = tuple(default)
            else:
                raise _err(source, f"{where}.{a}", "missing; give it in the block or at top level")
        for cost, act, out, ce_out in itertools.product(axes["cost"], axes["activation"], axes["output"],
                                                         axes["ce_outside"]):
            problem = pairing_problem(act if out == "same" else out, cost, ce_out)
            if problem is not None:
                field, why = problem
                key = f"{where}.{field}" if field in b or implicit else field
                hint = (f"; this block has output = {out!r}" + (f" (hidden {act!r})" if out == "same" else "")
                        if field == "cost" else "")
                raise _err(source, key, why + hint)
        grid.append(GridBlock(mode, *(axes[a] for a in AXES)))

    spec = StudySpec(name, dataset, label, split, split_seed, tuple(hidden), epochs, batch_size, dtype,
                     seeds, patience, tuple(grid), description, source, text, scale=scale)
    from .expand import MAX_RUNS, count_runs, expand

    # Duplicates across blocks are a spec error too. A spec above the run limit is checked
    # (count first, then duplicates) when it is run, where --max-runs can raise the limit.
    if count_runs(spec) <= MAX_RUNS:
        expand(spec)
    return spec


#: settings that change what every run means; a stored study's are never changed by a spec
FIXED_SETTINGS = ("dataset", "label", "split", "split_seed", "hidden", "epochs", "batch_size", "dtype", "patience")


def check_growth(stored: dict, spec: StudySpec, stored_keys, source: str = "--out") -> None:
    """Whether ``spec`` can continue a study stored with the spec dict ``stored`` and the
    run keys ``stored_keys``: it may add seeds, lrs, values on any axis or grid blocks (the
    stored runs keep their keys), but not change a setting of :data:`FIXED_SETTINGS`, nor
    drop runs the store holds. Raises :class:`SgdlabError` naming the key otherwise."""
    new = spec.to_dict()
    for key in FIXED_SETTINGS:
        if stored.get(key) != new.get(key):
            raise SgdlabError(f"{source}: the stored study has {key} = {stored.get(key)!r}, this spec "
                              f"{new.get(key)!r}; changing {key} changes what every stored run means. Keep "
                              f"{key} as stored, or choose another --out (or --force to start over)")
    from .expand import expand

    planned = {r.key: r for r in expand(spec)}
    dropped = [k for k in stored_keys if k not in planned]
    if dropped:
        raise SgdlabError(f"{source}: this spec drops {len(dropped)} stored run{'s' * (len(dropped) != 1)} "
                          f"(e.g. {dropped[0]}): a study can grow (more seeds, lrs, axis values or blocks), "
                          "not shrink; keep the stored grid in the spec, or choose another --out "
                          "(or --force to start over)")
