"""Behaviour kept by the engine's speed-ups: the parsed-scenario cache and the row-slice helpers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from abm.config import ConfigError, load_config
from abm.model import CommonPurposeModel
from abm.state import as_slice, by_ward, clip01


def _write(path: Path, budget: float, mtime_ns: int | None = None) -> None:
    path.write_text(f"extends: south_tees\neffort: {{budget: {budget}}}\n")
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))


def test_scenario_cache_sees_edits_and_hands_out_copies(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    _write(path, 11.0)
    assert load_config(path).effort.budget == 11.0
    assert load_config(path).effort.budget == 11.0  # from the cache
    _write(path, 22.0)  # a new size
    assert load_config(path).effort.budget == 22.0
    _write(path, 33.0, mtime_ns=path.stat().st_mtime_ns + 10**9)  # same size, a later time
    assert load_config(path).effort.budget == 33.0
    # a caller changing what it was given does not change the next load (extends is popped, too)
    first = load_config(path, {"effort.budget": 5.0})
    assert first.effort.budget == 5.0 and load_config(path).effort.budget == 33.0


def test_scenario_cache_still_refuses_a_file_that_became_bad(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    _write(path, 11.0)
    load_config(path)
    path.write_text("effort: {budget: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
    path.unlink()
    with pytest.raises(ConfigError, match="file not found"):
        load_config(path)


def test_as_slice_only_for_runs_of_rows() -> None:
    assert as_slice(np.array([3, 4, 5])) == slice(3, 6)
    gaps = np.array([1, 2, 4])
    assert as_slice(gaps) is gaps
    assert as_slice(np.array([], dtype=np.intp)).size == 0


def test_row_slices_pick_the_same_people_as_the_indices() -> None:
    model = CommonPurposeModel(rng=2, steps=2)
    s = model.state
    for rows, index in ((model.staff_rows, model.staff_index), (model.resident_rows, model.resident_index)):
        assert np.array_equal(s.vision[rows], s.vision[index])


def test_by_ward_spreads_a_ward_table_over_everyone_as_a_gather_would() -> None:
    model = CommonPurposeModel(rng=2, steps=2)
    table = np.random.default_rng(0).random(len(model.ward_names))
    assert np.array_equal(by_ward(model, table), table[model.state.ward])
    # people in any order (here shuffled wards): still everyone's own ward's figure
    rng = np.random.default_rng(1)
    model.state.ward = rng.permutation(model.state.ward)
    model._fixed.clear()
    assert np.array_equal(by_ward(model, table), table[model.state.ward])


def test_clip01_bounds_and_signed_zero() -> None:
    x = np.array([-0.5, -0.0, 0.0, 0.25, 1.0, 1.5, np.nan])
    out = clip01(x.copy())
    assert np.array_equal(out[:6], [0.0, 0.0, 0.0, 0.25, 1.0, 1.0]) and np.isnan(out[6])
    assert not np.signbit(out[:6]).any()  # -0.0 comes out as 0.0
