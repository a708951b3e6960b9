"""sgdlab: a neural-network laboratory on numpy: minibatch SGD, costs, activations, initialisation."""

__version__ = "0.1.0"

from .config import RunConfig, rng_streams  # noqa: E402
from .data import Dataset, load_dataset  # noqa: E402
from .errors import SgdlabError  # noqa: E402
from .io import load, save  # noqa: E402
from .nn import Network, gradcheck  # noqa: E402
from .train import SGD, History, TrainResult, train  # noqa: E402
from .study import StudyResults, open_study, run_study  # noqa: E402

__all__ = ["__version__", "RunConfig", "rng_streams", "Dataset", "load_dataset", "SgdlabError",
           "load", "save", "Network", "gradcheck", "SGD", "History", "TrainResult", "train",
           "StudyResults", "open_study", "run_study"]


def __getattr__(name):
    # SGDNetClassifier imports scikit-learn (~1-2 s); load it on first use, not with every CLI call.
    if name == "SGDNetClassifier":
        from .estimator import SGDNetClassifier
        return SGDNetClassifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ += ["SGDNetClassifier"]
