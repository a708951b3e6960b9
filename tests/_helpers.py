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


def stored_group_sizes(db):
    """Runs stored per schedule group in the SQLite store ``db``, after checking its integrity."""
    import sqlite3

    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return [n for (n,) in con.execute("SELECT COUNT(*) FROM runs GROUP BY group_id")]
    finally:
        con.close()
