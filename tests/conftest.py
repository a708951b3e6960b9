"""Shared fixtures: keep this small; area-specific fixtures live in their own test files."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def digits():
    """The paper's digits split (60/20/20, split seed 0), loaded once per session."""
    from sgdlab import load_dataset

    return load_dataset("digits")
