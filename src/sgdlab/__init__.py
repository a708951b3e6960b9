"""sgdlab: a neural-network laboratory on numpy: minibatch SGD, costs, activations, initialisation."""

from ._version import __version__
from .config import RunConfig, rng_streams
from .data import Dataset, load_dataset
from .errors import SgdlabError
from .io import load, save
from .nn import Network
from .nn.gradcheck import gradcheck  # the function; the module stays sgdlab.nn.gradcheck
from .engine import SGD, History, TrainResult, train
from .study import StudyResults, open_study
from .workflow import run_study

__all__ = ["__version__", "RunConfig", "rng_streams", "Dataset", "load_dataset", "SgdlabError",
           "load", "save", "Network", "gradcheck", "SGD", "History", "TrainResult", "train",
           "StudyResults", "open_study", "run_study", "SGDNetClassifier"]


def __getattr__(name):
    # SGDNetClassifier imports scikit-learn (~1-2 s); load it on first use, not with every CLI call.
    if name == "SGDNetClassifier":
        from .estimator import SGDNetClassifier
        return SGDNetClassifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
