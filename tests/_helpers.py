"""Helpers shared by several test files (pytest puts this folder on sys.path)."""

from __future__ import annotations

import json


def comparable(records):
    """Everything a stored run produced except wall-clock seconds, by key."""
    out = {}
    for r in records:
        final = {k: v for k, v in r.final.items() if k != "seconds"}
        hist = {k: v for k, v in r.history.to_dict().items() if k != "seconds"}
        out[r.key] = (r.mode, r.config, r.status, json.dumps(final), json.dumps(hist), r.test_predictions, r.error)
    return out
