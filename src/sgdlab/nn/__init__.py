"""The math: activations, costs, initialisers, the network, gradient checks (numpy only)."""

from .activations import ACTIVATIONS, HIDDEN_ACTIVATIONS, get_activation
from .costs import COSTS, SHORTCUTS, check_pairing, get_cost
from .gradcheck import GradcheckResult  # the function is sgdlab.gradcheck; sgdlab.nn.gradcheck is the module
from .init import BIAS_INITS, INITS, init_params
from .network import Gradients, Network, one_hot

__all__ = ["ACTIVATIONS", "HIDDEN_ACTIVATIONS", "COSTS", "SHORTCUTS", "INITS", "BIAS_INITS",
           "Network", "Gradients", "GradcheckResult", "get_activation", "get_cost",
           "check_pairing", "init_params", "one_hot"]
