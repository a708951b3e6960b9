"""TensorFlow/Keras: ``tf.keras.Sequential`` of ``Dense`` layers and ``tf.keras.optimizers.SGD``.

Rows:

- ``float32`` and ``float64`` (init ``sgdlab``): sgdlab's initial weights (the ``Dense``
  kernel is sgdlab's ``W`` as is), sgdlab's minibatches fed one by one to a compiled
  ``tf.function`` step (``GradientTape`` + ``SGD.apply_gradients``). As in the PyTorch rows
  the output activation is folded into the loss: ``ce`` is
  ``sum(sigmoid_cross_entropy_with_logits) / n`` (summed over the outputs, averaged over
  the minibatch, sgdlab's ``ce``), ``cce`` is ``mean(softmax_cross_entropy_with_logits)``.
- ``own-init`` (float32): the model as a Keras user would write it: ``Dense`` layers with
  Keras's own initialiser (Glorot-uniform kernels, zero biases), a sigmoid or softmax output,
  ``compile(SGD(lr), loss="binary_crossentropy" | "categorical_crossentropy")`` and
  ``fit(batch_size, shuffle=True)`` one epoch at a time. Keras's ``binary_crossentropy``
  *averages* over the outputs where the paper's ``ce`` sums them, so the paper's model
  trains with 1/k of the gradient there (k outputs). Its note also records the per-output
  binary accuracy (``tf.keras.metrics.BinaryAccuracy``: each of the k outputs thresholded at
  0.5 and counted; a model that outputs all zeros scores 1 - 1/k), a number easily mistaken for
  an accuracy.
"""

from __future__ import annotations

import os
import time
import warnings
from contextlib import suppress

import numpy as np

from ..data import Dataset
from ..nn.network import one_hot
from ..engine.schedule import batches  # the engines' minibatch schedule
from .common import NotInstalled, Reference, SeedRun, Variant, accuracy, train_epochs

VARIANTS = [
    Variant("tensorflow", "float32", "float32", "sgdlab", "sgdlab's initial weights and minibatch order"),
    Variant("tensorflow", "float64", "float64", "sgdlab", "sgdlab's initial weights and minibatch order"),
    Variant("tensorflow", "own-init", "float32", "own",
            "Keras's own init (Glorot-uniform, zero biases) and shuffling; compile + fit"),
]

_configured = False


def _import():
    """Import TensorFlow quietly, on few threads (small matrices; the machine is shared)."""
    global _configured
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import tensorflow as tf
    except Exception as e:
        raise NotInstalled("tensorflow", type(e).__name__) from None
    if not _configured:
        _configured = True
        with suppress(RuntimeError):  # the runtime was already started by someone else
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        with suppress(Exception):
            tf.get_logger().setLevel("ERROR")
    return tf


def version() -> str:
    return _import().__version__


def run(variant: Variant, config, data: Dataset, seed: int, ref: Reference) -> SeedRun:
    tf = _import()
    if config.activation != "sigmoid" or (config.output_activation, config.cost) not in (
            ("sigmoid", "ce"), ("softmax", "cce")):
        raise ValueError("tensorflow baseline: sigmoid hidden layers with sigmoid + ce or softmax + cce only")
    out = SeedRun("tensorflow", variant.key, seed, variant.dtype, variant.init, tf.__version__)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if variant.init == "own":
            return _run_own(tf, config, data, seed, out)
        return _run_shared(tf, config, data, ref, out)


def _dense_stack(tf, config, data, dt, output):
    """``Sequential`` of sigmoid ``Dense`` layers and an ``output`` one (None: logits)."""
    keras = tf.keras
    hidden = [keras.layers.Dense(units, activation="sigmoid", dtype=dt) for units in config.hidden]
    return keras.Sequential([keras.Input(shape=(data.n_features,), dtype=dt), *hidden,
                             keras.layers.Dense(data.n_classes, activation=output, dtype=dt)])


def _run_shared(tf, config, data, ref, out):
    dt = out.dtype
    model = _dense_stack(tf, config, data, dt, None)  # logits; the output activation is in the loss
    model.set_weights([p.astype(dt) for wb in zip(ref.weights, ref.biases) for p in wb])
    opt = tf.keras.optimizers.SGD(learning_rate=config.lr)
    k = data.n_classes
    if config.cost == "ce":
        def loss_of(logits, Y):
            n = tf.cast(tf.shape(logits)[0], logits.dtype)
            return tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=Y, logits=logits)) / n
    else:
        def loss_of(logits, Y):
            return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=Y, logits=logits))

    @tf.function(input_signature=[tf.TensorSpec([None, data.n_features], dt), tf.TensorSpec([None, k], dt)],
                 reduce_retracing=True)
    def step(x, Y):
        with tf.GradientTape() as tape:
            loss = loss_of(model(x, training=True), Y)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    X = np.asarray(data.X_train, dtype=dt)
    Y = one_hot(data.y_train, k, dt)

    def feed(perm):
        return [(tf.constant(X[b]), tf.constant(Y[b])) for b in batches(perm, config.batch_size)]

    def predict(rows):
        return model(tf.constant(np.asarray(rows, dtype=dt)), training=False).numpy()

    opt.build(model.trainable_variables)
    step.get_concrete_function()  # trace once, outside the timing
    return train_epochs(out, data, ref.perms, feed, step, predict,
                        lambda: [np.array(p, dtype=np.float64) for p in model.get_weights()])


def _run_own(tf, config, data, seed, out):
    tf.keras.utils.set_random_seed(seed)
    model = _dense_stack(tf, config, data, "float32", config.output_activation)
    loss = "binary_crossentropy" if config.cost == "ce" else "categorical_crossentropy"
    model.compile(optimizer=tf.keras.optimizers.SGD(learning_rate=config.lr), loss=loss, metrics=["accuracy"])
    k = data.n_classes
    X, Y = np.asarray(data.X_train, np.float32), one_hot(data.y_train, k, np.float32)
    Xv, Yv = np.asarray(data.X_val, np.float32), one_hot(data.y_val, k, np.float32)
    eval_seconds = [0.0]

    class PerEpoch(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            t0 = time.perf_counter()
            probs = model(Xv, training=False).numpy()
            if not np.isfinite(probs).all():
                out.status = "diverged"
                self.model.stop_training = True
            else:
                out.val_acc.append(accuracy(probs, data.y_val))
            eval_seconds[0] += time.perf_counter() - t0

    t0 = time.perf_counter()
    model.fit(X, Y, batch_size=config.batch_size, epochs=config.epochs, shuffle=True, verbose=0,
              callbacks=[PerEpoch()])
    out.seconds = time.perf_counter() - t0 - eval_seconds[0]
    if out.status == "ok":
        out.test_acc = accuracy(model(np.asarray(data.X_test, np.float32), training=False).numpy(), data.y_test)
        if config.cost == "ce":
            probs = model(Xv, training=False).numpy()
            binary = float(np.mean((probs > 0.5) == (Yv > 0.5)))
            out.message = (f"loss binary_crossentropy: the mean over the {k} outputs, 1/{k} of ce's gradient; "
                           f"validation per-output binary accuracy (BinaryAccuracy) {binary:.4f}")
        else:
            out.message = "loss categorical_crossentropy"
    out.samples = len(data.y_train) * len(out.val_acc)
    return out
