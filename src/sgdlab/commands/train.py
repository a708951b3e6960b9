"""``sgdlab train``: train one network and print a summary (or JSON)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import SgdlabError
from .common import (add_data_args, add_network_args, add_training_args, config_from_args, is_tty, path_arg,
                     print_json, require_label_fits)


def register(sub):
    p = sub.add_parser("train", help="train one network", description="Train one MLP with minibatch SGD.")
    add_data_args(p)
    add_network_args(p)
    add_training_args(p)
    out = p.add_argument_group("output")
    out.add_argument("--save", type=path_arg, metavar="FILE.npz", help="save the trained network here")
    out.add_argument("--json", action="store_true", help="print one JSON object (final metrics and history)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..data import load_dataset
    from ..engine import train
    from ..io import save
    from ..memory import check_fits

    config = config_from_args(args)
    require_label_fits(config.dataset, config.label)
    data = load_dataset(config.dataset, config.split, config.split_seed, config.label, config.scale)
    # estimate before allocating: --layers 100000000 is one line, not a MemoryError
    check_fits([data.n_features, *config.hidden, data.n_classes], config.dtype,
               max(len(data.y_train), len(data.y_val), len(data.y_test)), what="--layers: the network")
    if args.save:  # fail on an unwritable path before training, not after
        parent = Path(args.save).resolve().parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SgdlabError(f"--save: cannot create {parent} ({e.strerror or e})") from None
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise SgdlabError(f"--save: cannot write into {parent}")
    if is_tty() and not args.json:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("[bold]train"), BarColumn(), TextColumn("epoch {task.completed}/{task.total}"),
                      TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=True) as bar:
            task = bar.add_task("train", total=config.epochs, info="")

            def on_epoch(epoch, hist):
                bar.update(task, completed=epoch, info=epoch_info(hist))

            result = train(config, data, on_epoch=on_epoch)
    else:
        result = train(config, data)
    saved = not_saved = None
    if args.save and not result.network.finite():
        # a diverged network's weights are not finite: load would refuse the file, so none is written
        not_saved = f"not saved to {args.save}: the network diverged (its weights are not finite)"
    elif args.save:
        extra, features = {"config": config.to_dict()}, None
        if str(config.dataset).lower().endswith(".csv"):
            # a CSV's feature and label column names, for predict to match a file's columns by name
            from ..data.datasets import csv_header

            features = list(data.feature_names)
            extra["label_column"] = config.label or (csv_header(config.dataset) or [None])[-1]
        saved = save(result.network, args.save, classes=data.classes, extra=extra, features=features,
                     scaler=data.scaler)
    hist = result.history
    if args.json:
        print_json({"config": config.to_dict(), "final": hist.final(), "history": hist.to_dict(),
                    "saved": None if saved is None else str(saved), "not_saved": not_saved})
    else:
        _summary(config, hist, data, saved)
    if not_saved:
        print(f"sgdlab: {not_saved}", file=sys.stderr)
        return 1
    return 0


def epoch_info(hist) -> str:
    """The progress bar's text after an epoch: loss, train and validation accuracy."""
    return (f"loss {hist.train_loss[-1]:.4g}  train acc {hist.train_acc[-1]:.4f}  "
            f"val acc {hist.val_acc[-1]:.4f}")


def _summary(config, hist, data, saved):
    from rich.console import Console
    from rich.table import Table

    f = hist.final()
    console = Console(file=sys.stdout)
    t = Table(title=f"sgdlab train: {config.dataset} {'-'.join(map(str, [data.n_features, *config.hidden, data.n_classes]))}, "
                    f"{config.activation}/{config.output_activation} + {config.cost}, {config.init}, lr {config.lr:g}")
    for col in ("split", "loss", "accuracy"):
        t.add_column(col, justify="right" if col != "split" else "left")
    for part, n in (("train", len(data.y_train)), ("val", len(data.y_val)), ("test", len(data.y_test))):
        t.add_row(f"{part} ({n})", f"{f[part + '_loss']:.4f}", f"{f[part + '_acc']:.4f}")
    console.print(t)
    status = f"status: {hist.status}"
    if hist.status == "diverged":
        status += f" at epoch {hist.diverged_epoch} (non-finite loss; metrics are from epoch {hist.epochs})"
    if hist.stopped_epoch:
        status += f", early-stopped at epoch {hist.stopped_epoch}"
    console.print(f"{status}; {hist.epochs} epochs in {f['seconds']:.2f} s")
    if hist.diagnosis:
        console.print(f"diagnosis: {hist.diagnosis}", markup=False, highlight=False, soft_wrap=True)
    if saved:
        console.print(f"saved to {saved}")
