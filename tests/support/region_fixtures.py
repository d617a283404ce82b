"""Test-only: a source folder with synthetic raw data for a region, as ``simulate_region`` leaves it."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from neuro_core.files import write_json_atomic
from tests.support.clip_reference import (
    REAL,
    IterationClips,
    RawSpec,
    downsample_remap,
    make_raw,
    reference_iteration,
    write_compact,
    write_original,
)

ANATOMY = Path(__file__).resolve().parents[2] / "data" / "deepsif-anatomy"
LEADFIELD = "leadfield_75_20k.mat"

#: the steps of one region run, by asset name
REGION_ASSET_NAMES = ("raw_nmm", "nmm_spikes")


def onset_for_peak(ds_peak: int) -> int:
    return 1000 + (ds_peak - 1) * 4 - 120


def region_specs(region: int, with_spikes: bool = True) -> list[RawSpec]:
    """Three iterations (2 × 6000 raw samples each) with source spikes in TVB column map(region)."""
    column = REAL.tvb_column(region)
    peaks = [(600, 1700), (1200,), (700, 1900)] if with_spikes else [(), (), ()]
    return [
        RawSpec(2, 6000, {column: [onset_for_peak(t) for t in ts]}, seed=100 + region * 3 + m)
        for m, ts in enumerate(peaks)
    ]


@dataclass
class RegionRaw:
    region: int
    references: list[IterationClips]

    @property
    def total(self) -> int:
        return sum(len(r.spike_time) for r in self.references)


def write_region_raw(
    source_dir: Path,
    region: int,
    raw_format: str = "compact",
    with_spikes: bool = True,
    complete: bool = True,
    simulation: dict | None = None,
) -> RegionRaw:
    """Raw data of ``region`` (all iterations) plus ``_complete.json``; returns the NumPy reference clips.

    ``simulation``: the simulation configuration to record for it (as ``raw_nmm`` does), so that a generation
    with that configuration extracts this raw data instead of simulating again."""
    fwd = scipy.io.loadmat(ANATOMY / LEADFIELD)["fwd"]
    raw_dir = source_dir / "raw_nmm" / f"a{region}"
    references = []
    for m, spec in enumerate(region_specs(region, with_spikes)):
        raw = make_raw(spec, REAL.n_tvb)
        nmm = downsample_remap(raw, REAL)
        if raw_format == "original":
            write_original(raw, spec, raw_dir, m, region)
        else:
            write_compact(nmm, raw_dir, m, region)
        references.append(reference_iteration(nmm, region, fwd))
    if simulation is not None:
        write_json_atomic(raw_dir / "_configuration.json", simulation)
    if complete:
        write_json_atomic(raw_dir / "_complete.json", {"region": region, "raw_format": raw_format})
    return RegionRaw(region, references)


def make_anatomy(folder: Path, full: bool = False, symlinks: bool = False) -> Path:
    """An anatomy folder with copies of the real lead field and connectivity; ``full``: every shipped anatomy file
    (the synthetic step needs the cortex files); ``symlinks``: links to the shipped files instead of copies (as
    in a DataLad / git-annex tree)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = (
        sorted(p.name for p in ANATOMY.iterdir() if p.is_file())
        if full
        else [LEADFIELD, "connectivity_998.zip"]
    )
    for name in names:
        target = folder / name
        if symlinks and not target.exists():
            target.symlink_to(ANATOMY / name)
        elif not target.exists():
            shutil.copy(ANATOMY / name, target)
    return folder


def snapshot(folder: Path) -> dict[str, np.ndarray]:
    """Every MAT file under ``folder`` (relative path → its main variable), for exact comparisons."""
    out = {}
    for path in sorted(folder.rglob("*.mat")):
        content = scipy.io.loadmat(path)
        if "data" in content:  # a clip
            value = content["data"]
        elif "num_spike" in content:  # an iteration marker
            value = np.concatenate([np.ravel(content["num_spike"]), np.ravel(content["spike_time"])])
        else:  # the peak-window cache
            names = ("n_clips", "window_start", "window_length", "shape_power", "clip_mean", "window_rows")
            value = np.concatenate([np.ravel(content[name]).astype(np.float64) for name in names])
        out[str(path.relative_to(folder))] = value
    return out


def mat_tree(root: Path) -> dict[str, dict[str, np.ndarray]]:
    """Every MAT file under ``root`` (relative path → its variables), plus any other file as raw bytes."""
    tree: dict[str, dict[str, np.ndarray]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = str(path.relative_to(root))
        if path.suffix == ".mat":
            tree[relative] = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
        else:
            tree[relative] = {"bytes": np.frombuffer(path.read_bytes(), dtype=np.uint8)}
    return tree


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def run_regions_in_process(source_dir: Path, regions: list[str], ops: dict) -> float:
    """``regions`` through the in-process region job on a throw-away instance (the reference the scale-out
    tests compare with); returns the seconds it took."""
    import time

    import dagster as dg

    from deepsif_assets.definitions import REGION_JOB
    from neuro_pipelines.definitions import defs

    started = time.monotonic()
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("regions", regions)
        for key in regions:
            result = defs.resolve_job_def(REGION_JOB).execute_in_process(
                instance=instance,
                partition_key=key,
                run_config={"ops": ops, "resources": {"deepsif_paths": {"config": {"source_dir": str(source_dir)}}}},
            )
            assert result.success, key
    return time.monotonic() - started
