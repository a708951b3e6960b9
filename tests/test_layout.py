"""The package layout: no name hides a module, no import runs up the layers.

``pkg.f = f`` where ``pkg/f.py`` exists breaks ``import pkg.f.x`` and ``pkg.f.helper``;
and a module that imports a higher layer (or its package's ``__init__`` for a value)
makes the layers a knot. Both are checked on the source as installed, with :mod:`ast`.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import types
from pathlib import Path

import numpy as np

import sgdlab

SRC = Path(sgdlab.__file__).parent

# Each top-level part of the package and its layer: a module may import its own layer or lower.
LAYERS = {
    "_version": 0, "errors": 0, "provenance": 0, "nn": 1, "choices": 1, "config": 1, "data": 1, "io": 1,
    "bounded": 1, "memory": 1, "outdir": 1,
    "engine": 2, "estimator": 3, "study": 3, "baselines": 3, "benchlib": 3,
    "report": 4, "workflow": 5, "commands": 6, "lab": 6, "cli": 6, "__main__": 6, "__init__": 6,
}


def _modules():
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("")
        yield path, list(rel.parts)


def _imported(path: Path, parts: list[str]):
    """(line, absolute dotted name below sgdlab, names imported) for each sgdlab import in ``path``."""
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
                target = [*base, *(node.module.split(".") if node.module else [])]
            elif node.module and node.module.split(".")[0] == "sgdlab":
                target = node.module.split(".")[1:]
            else:
                continue
            yield node.lineno, target, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "sgdlab":
                    yield node.lineno, a.name.split(".")[1:], []


def test_no_import_runs_up_the_layers():
    bad = []
    for path, parts in _modules():
        here = LAYERS[parts[0] if len(parts) > 1 or parts[0] != "__init__" else "__init__"]
        for line, target, _ in _imported(path, parts):
            if not target:
                continue
            there = LAYERS[target[0]]
            if there > here:
                bad.append(f"{path.relative_to(SRC)}:{line} imports sgdlab.{'.'.join(target)}")
    assert not bad, "imports from a lower layer to a higher one:\n" + "\n".join(bad)


def test_no_module_takes_a_value_from_the_package_init():
    """``from .. import __version__`` in a submodule imports the whole package first (a cycle)."""
    bad = []
    for path, parts in _modules():
        if parts == ["__init__"]:
            continue
        for line, target, names in _imported(path, parts):
            # submodules of sgdlab may be imported by name; a value defined in sgdlab/__init__.py not
            values = [n for n in names if not (SRC / f"{n}.py").is_file() and not (SRC / n).is_dir()]
            if not target and values:
                bad.append(f"{path.relative_to(SRC)}:{line} takes {values} from sgdlab/__init__.py")
    assert not bad, "\n".join(bad)


def test_version_has_one_home():
    from sgdlab._version import __version__

    assert sgdlab.__version__ == __version__
    assert "__version__ =" not in (SRC / "__init__.py").read_text()


def test_no_public_name_hides_a_module():
    """For every package, an attribute named like one of its submodules is that submodule."""
    hidden = []
    for path, parts in _modules():
        if parts[-1] == "__init__" or parts[0] == "__main__":
            continue
        name = ".".join(["sgdlab", *parts])
        module = importlib.import_module(name)
        parent = importlib.import_module(name.rsplit(".", 1)[0])
        attr = getattr(parent, parts[-1])
        if attr is not module:
            hidden.append(f"{parent.__name__}.{parts[-1]} is {attr!r}, not the module")
    assert not hidden, "\n".join(hidden)


def test_gradcheck_module_and_function_are_both_reachable():
    # in a fresh interpreter: the import statement users write, then the attribute path
    code = ("import sgdlab.nn.gradcheck, sgdlab; m = sgdlab.nn.gradcheck; "
            "assert hasattr(m, 'numerical_gradients') and callable(m.gradcheck); "
            "assert sgdlab.gradcheck is m.gradcheck")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert isinstance(sgdlab.nn.gradcheck, types.ModuleType)

    rng = np.random.default_rng(0)
    net = sgdlab.Network([3, 4, 2], "tanh", "sigmoid", "ce").initialize("xavier", "normal", rng)
    X, Y = rng.standard_normal((5, 3)), np.eye(2)[rng.integers(0, 2, 5)]
    res = sgdlab.gradcheck(net, X, Y)
    assert res.passed(1e-7) and res.n_params == 3 * 4 + 4 + 4 * 2 + 2


def test_engine_package_and_train_function_are_both_reachable():
    code = ("import sgdlab.engine.batched, sgdlab; from sgdlab.engine.loop import train as t; "
            "assert sgdlab.train is t and callable(sgdlab.train); "
            "assert sgdlab.engine.batched.train_many")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
