"""What :func:`sgdlab.train` takes, checked before anything is allocated: the config, the data
(a :class:`~sgdlab.data.Dataset` a user may have built by hand) and a network to continue.

``load_dataset`` already hands out clean data; these checks are for everything else, where a
bad shape or label would fail deep inside the engine or, worse, train silently on garbage.
"""

from __future__ import annotations

from dataclasses import replace

from ..config import RunConfig
from ..data import Dataset
from ..errors import SgdlabError
from ..nn.inputs import check_features, check_labels
from ..nn.network import Network

PARTS = ("train", "val", "test")


def check_config(config) -> RunConfig:
    if not isinstance(config, RunConfig):
        hint = "; build one with RunConfig(**d) or RunConfig.from_dict(d)" if isinstance(config, dict) else ""
        raise SgdlabError(f"config: expected an sgdlab.RunConfig, got {type(config).__name__}{hint}")
    return config


def check_data(data) -> Dataset:
    """``data`` with every part's features as 2-D finite numeric arrays of one width and its
    labels as class indices into ``data.classes``, one per row (arrays converted, not copied
    where they are already so)."""
    if not isinstance(data, Dataset):
        hint = ("; load it with sgdlab.load_dataset(name), or leave data out to load config.dataset"
                if isinstance(data, str) else "; build one with sgdlab.data.Dataset(...) or sgdlab.load_dataset")
        raise SgdlabError(f"data: expected an sgdlab.Dataset, got {type(data).__name__}{hint}")
    try:
        n_classes = len(data.classes)
    except TypeError:
        raise SgdlabError(f"data.classes: expected the class labels, one per class, got {data.classes!r}") from None
    if n_classes < 1:  # one class is one output unit: the hand-worked example trains that
        raise SgdlabError("data.classes: no classes; it lists the class labels, one per output unit")
    changes, width = {}, None
    for part in PARTS:
        X = check_features(getattr(data, f"X_{part}"), width, f"data.X_{part}", "data.X_train has")
        width = X.shape[1]
        changes[f"X_{part}"] = X
        changes[f"y_{part}"] = check_labels(getattr(data, f"y_{part}"), n_classes, len(X), f"data.y_{part}")
    if not len(changes["y_train"]):
        raise SgdlabError("data.X_train: no rows; training needs at least one sample")
    return replace(data, **changes)


def check_network(network, config: RunConfig, n_features: int, n_classes: int) -> Network:
    """A network to continue training: initialised, finite, and the network ``config``
    describes on this data (layer sizes, activations, cost; its dtype may differ, see
    :func:`sgdlab.train`). A mismatch would train one network and record another's
    diagnostics and config."""
    if not isinstance(network, Network):
        raise SgdlabError(f"network: expected an sgdlab.Network, got {type(network).__name__}")
    network.check_parameters()
    want = [n_features, *config.hidden, n_classes]
    if network.sizes != want:
        raise SgdlabError(f"network: layer sizes {network.sizes}, but the config (hidden={config.hidden}) on this "
                          f"data ({n_features} features, {n_classes} classes) describes {want}")
    for key, have, need in (("activation", network.activation, config.activation),
                            ("output", network.output, config.output_activation),
                            ("cost", network.cost, config.cost), ("ce_outside", network.ce_outside, config.ce_outside)):
        if have != need:
            raise SgdlabError(f"network: its {key} is {have!r}, the config's is {need!r}; continue it under a config "
                              f"with {key}={have!r}")
    if not network.finite():
        raise SgdlabError("network: its parameters hold NaN or infinity; it cannot be trained further")
    return network


def check_on_epoch(on_epoch) -> None:
    if on_epoch is not None and not callable(on_epoch):
        raise SgdlabError(f"on_epoch: expected a function on_epoch(epoch, history) or None, got {on_epoch!r}")
