"""Checks of a written synthetic source file (pure): what DeepSIF's loader relies on.

Variables (MATLAB ``-v7``, all double): ``selected_region`` (N, n_sources, 70; 0-based region ids, padded with
15213), ``nmm_idx`` and ``random_samples`` (N, n_sources), ``current_snr`` and ``sensor_snr`` (N, 1),
``scale_ratio`` (N, n_sources, L), ``mag_change`` (N, n_sources, 70; padded where ``selected_region`` is).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from deepsif_assets.simulation.params import N_FS_REGIONS
from deepsif_assets.synthetic.generator import MAX_SIZE, NAN_NUMBER, SENSOR_SNR_DB

VARIABLES = ("selected_region", "nmm_idx", "random_samples", "current_snr", "sensor_snr", "scale_ratio", "mag_change")


def check_synthetic_output(path: Path, clip_store_rows: int) -> dict[str, tuple[bool, list[str]]]:
    """``{check name: (passed, problems)}`` for the file at ``path``; ``clip_store_rows`` = clips nmm_idx may
    index (the store's rows)."""
    data = scipy.io.loadmat(path, variable_names=list(VARIABLES))
    shapes = _shape_problems(data)
    if shapes:  # the value checks below assume the shapes
        return {
            "variables_and_shapes": (False, shapes),
            "values_in_range": (False, ["not checked: shapes are wrong"]),
            "nmm_idx_in_clip_store": (False, ["not checked: shapes are wrong"]),
        }
    values = _value_problems(data)
    idx = data["nmm_idx"]
    outside = int(np.sum((idx < 0) | (idx >= clip_store_rows) | (idx != np.round(idx))))
    rows = [f"{outside} nmm_idx outside 0…{clip_store_rows - 1}"] if outside else []
    return {
        "variables_and_shapes": (True, []),
        "values_in_range": (not values, values),
        "nmm_idx_in_clip_store": (not rows, rows),
    }


def _shape_problems(data: dict) -> list[str]:
    problems = [f"{name} is missing" for name in VARIABLES if name not in data]
    if problems:
        return problems
    regions = data["selected_region"]
    n, k = regions.shape[:2] if regions.ndim == 3 else (-1, -1)
    expected = {
        "selected_region": (n, k, MAX_SIZE),
        "nmm_idx": (n, k),
        "random_samples": (n, k),
        "current_snr": (n, 1),
        "sensor_snr": (n, 1),
        "mag_change": (n, k, MAX_SIZE),
    }
    for name, shape in expected.items():
        if data[name].shape != shape:
            problems.append(f"{name} has shape {data[name].shape}, expected {shape}")
    ratio = data["scale_ratio"]
    if ratio.ndim != 3 or ratio.shape[:2] != (n, k):
        problems.append(f"scale_ratio has shape {ratio.shape}, expected ({n}, {k}, L)")
    for name in VARIABLES:
        if data[name].dtype != np.float64:
            problems.append(f"{name} is {data[name].dtype}, expected double")
    if n < 1:
        problems.append("no samples")
    return problems


def _value_problems(data: dict) -> list[str]:
    problems = []
    for name in VARIABLES:
        bad = int(np.sum(~np.isfinite(data[name])))
        if bad:
            problems.append(f"{bad} NaN/Inf in {name}")
    regions = data["selected_region"]
    pad = regions == NAN_NUMBER
    wrong_ids = int(np.sum(~pad & ((regions < 0) | (regions >= N_FS_REGIONS) | (regions != np.round(regions)))))
    if wrong_ids:
        problems.append(f"{wrong_ids} selected_region ids outside 0…{N_FS_REGIONS - 1}")
    if np.any(pad[:, :, 0]):
        problems.append("a patch without its centre region")
    mag = data["mag_change"]
    wrong_mag = int(np.sum(~pad & ((mag <= 0) | (mag > 1))) + np.sum(pad & (mag != NAN_NUMBER)))
    if wrong_mag:
        problems.append(f"{wrong_mag} mag_change values outside (0, 1] (or not padded where the patch is)")
    snr_values = set(np.unique(data["current_snr"]).tolist())
    if not snr_values <= set(SENSOR_SNR_DB):
        problems.append(f"current_snr has {sorted(snr_values - set(SENSOR_SNR_DB))}, expected {list(SENSOR_SNR_DB)}")
    if not np.array_equal(data["current_snr"], data["sensor_snr"]):
        problems.append("sensor_snr differs from current_snr")
    if np.any(data["random_samples"] < 1):
        problems.append("random_samples below 1 (clip numbers are 1-based)")
    return problems
