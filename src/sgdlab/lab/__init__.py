"""``sgdlab lab``: a local web lab on the real engine.

Pick the paper's settings in a form, press Train and watch the network learn (or fail)
epoch by epoch: loss and accuracy curves, per-layer diagnostics, the first layer's weights
as images, and at the end the confusion matrix and misclassified test images; two runs on
the same axes; the studies under a store folder, live while they run. See ``docs/lab.md``.

>>> from sgdlab.lab import create_app   # an ASGI app (Starlette), e.g. for tests  # doctest: +SKIP
>>> app = create_app("results")                                                    # doctest: +SKIP
"""

from .app import create_app
from .form import Limits
from .server import serve  # uvicorn is imported only when it runs

__all__ = ["create_app", "Limits", "serve"]
