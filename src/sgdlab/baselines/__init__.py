"""The paper's models in scikit-learn, PyTorch and TensorFlow/Keras, side by side with sgdlab.

Each framework is optional and imported only when its runner trains (``pip install
"sgdlab[torch]"``, ``"sgdlab[tensorflow]"``); one that is missing becomes a "not installed"
row. The engine never imports this package.

>>> from sgdlab.data import load_dataset
>>> from sgdlab.baselines import run_compare, write_compare
>>> results = run_compare(load_dataset("digits"), frameworks=["sgdlab", "torch"], seeds=[0], epochs=3)
>>> write_compare(results, "results")          # results/compare/{paper,corrected}.{md,csv,png,svg}
"""

from .common import FRAMEWORKS, INSTALL, MODEL_NAMES, Model, NotInstalled, Reference, SeedRun, Variant, models
from .compare import (ModelComparison, Row, aggregate, run_compare, table_markdown, write_compare,
                      write_tables_and_figures)

__all__ = ["FRAMEWORKS", "INSTALL", "MODEL_NAMES", "Model", "NotInstalled", "Reference", "SeedRun", "Variant",
           "models", "ModelComparison", "Row", "aggregate", "write_tables_and_figures", "run_compare", "table_markdown",
           "write_compare"]
