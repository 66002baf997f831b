"""Shared fixtures: small, fast scenarios built from the shipped default."""

from __future__ import annotations

import pytest

from abm import CommonPurposeModel

#: A small system (about 300 agents) for fast mechanism tests.
SMALL = {"population.residents": 240, "steps": 30}


@pytest.fixture
def small_model() -> CommonPurposeModel:
    return CommonPurposeModel(rng=7, overrides=SMALL)
