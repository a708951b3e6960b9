"""The valid choices of a run, in one place.

:class:`~sgdlab.config.RunConfig` checks every value against these (it is the one
validator); the CLI offers them as its flags' choices; the study spec and the estimator hand
their values to RunConfig's checks under their own key names. The names come from the math's
registries (:mod:`sgdlab.nn`), so a new activation, cost or initialiser appears here by itself.
"""

from __future__ import annotations

from .nn.activations import ACTIVATIONS as _ACTIVATIONS
from .nn.activations import HIDDEN_ACTIVATIONS
from .nn.costs import CE_OUTSIDE, pairing_problem
from .nn.costs import COSTS as _COSTS
from .nn.init import BIAS_INITS as _BIAS_INITS
from .nn.init import INITS as _INITS

DTYPES = ("float64", "float32")
#: output activations; ``same`` repeats the hidden one (what the paper did)
OUTPUTS = ("same", *_ACTIVATIONS)
COSTS = tuple(_COSTS)
INITS = tuple(_INITS)
BIAS_INITS = tuple(_BIAS_INITS)

#: RunConfig field -> its valid values
CHOICES: dict[str, tuple[str, ...]] = {
    "activation": HIDDEN_ACTIVATIONS, "output": OUTPUTS, "cost": COSTS, "ce_outside": CE_OUTSIDE,
    "init": INITS, "bias_init": BIAS_INITS, "dtype": DTYPES,
}

__all__ = ["DTYPES", "HIDDEN_ACTIVATIONS", "OUTPUTS", "COSTS", "CE_OUTSIDE", "INITS", "BIAS_INITS", "CHOICES",
           "pairing_problem"]
