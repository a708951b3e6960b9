"""The benchmark library reads the paper's grid from the bundled spec, not from a copy."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

from sgdlab.benchlib import paper_grid
from sgdlab.config import RunConfig


def test_paper_grid_is_the_first_block_of_paper_toml():
    grid = paper_grid(epochs=3, seeds=2, dtype="float32")
    # the paper's own grid, written out: cost x activation x init x lr x seed, paper mode
    expected = [RunConfig(hidden=(32, 16), activation=a, output="same", cost=c, init=i, lr=lr, batch_size=10,
                          epochs=3, seed=s, dtype="float32")
                for c, a, i, lr, s in itertools.product(("mse", "ce"), ("sigmoid", "tanh", "relu"),
                                                        ("gaussian", "xavier"),
                                                        (1.0, 0.1, 0.01, 0.001, 0.0001, 0.00001), range(2))]
    assert grid == expected
    assert len(paper_grid()) == 360 and {c.ce_outside for c in paper_grid()} == {"clip"}


def test_benchmark_script_imports_no_cli_module():
    script = Path(__file__).parents[1] / "benchmarks" / "bench_batched.py"
    code = (f"import runpy, sys; runpy.run_path({str(script)!r}, run_name='not_main'); "
            "bad = sorted(m for m in sys.modules if m.startswith(('sgdlab.commands', 'sgdlab.cli'))); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
