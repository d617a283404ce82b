"""The synthetic-source step end to end, Dagster-free: regions → clip counts → Octave generator → clip store."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.io

from deepsif_assets.fingerprint import recorded_fingerprint
from deepsif_assets.layout import RegionLayout, clip_root
from deepsif_assets.params import SyntheticParams
from deepsif_assets.synthetic import anatomy, clips, generator
from neuro_core.files import confined_path, naming_path, remove_stale_temp_files, remove_stale_work_dirs
from neuro_core.locks import exclusive_lock

WORK_DIR_PREFIX = ".synthetic-"


@dataclass(frozen=True)
class SyntheticRequest:
    """One dataset to generate: where, from which regions, with which parameters."""

    anatomy_dir: Path
    source_dir: Path
    candidate_regions: tuple[int, ...]  # regions whose clips are done (see choose_regions)
    params: SyntheticParams = field(default_factory=SyntheticParams)


@dataclass(frozen=True)
class RegionChoice:
    """Which regions a synthetic source may use, and why the others are left out."""

    regions: tuple[int, ...]
    fingerprint: str  # the configuration the regions' clips were made with
    not_materialized: list[int]  # requested in params.regions but not done
    other_configurations: dict[str, list[int]]  # fingerprint → regions made with another configuration


class MixedConfigurationsError(ValueError):
    """The regions' clips were made with different configurations and none was chosen."""


def choose_regions(source_dir: Path, params: SyntheticParams, done_keys: Iterable[str]) -> RegionChoice:
    """The centre-region candidates: done (materialized) regions, optionally only ``params.regions``, all made
    with one configuration (``params.fingerprint``, or the only one present)."""
    done = set(regions_from_partition_keys(done_keys))
    wanted = done if params.regions is None else set(params.regions)
    candidates = sorted(wanted & done)
    if not candidates:
        raise clips.NoClipsError(
            "no nmm_spikes partition is materialized"
            + (f" among the requested regions {sorted(wanted)[:20]}" if params.regions is not None else "")
            + ": run the per-region clip extraction first"
        )
    root = clip_root(Path(source_dir), params.filename)
    groups: dict[str, list[int]] = {}
    for region in candidates:
        fingerprint = recorded_fingerprint(RegionLayout(Path(source_dir), region, params.filename).configuration_path)
        groups.setdefault(fingerprint, []).append(region)
    chosen = params.fingerprint
    if chosen is None:
        if len(groups) > 1:
            summary = ", ".join(f"{fp}: {len(rs)} regions ({rs[:5]}…)" for fp, rs in sorted(groups.items()))
            raise MixedConfigurationsError(
                f"the clips in {root} were made with {len(groups)} different configurations ({summary}); set "
                f"`fingerprint` to the one to use (see {root}/source_configuration.json), or re-run the others"
            )
        chosen = next(iter(groups))
    if chosen not in groups:
        raise MixedConfigurationsError(
            f"no done region was made with configuration {chosen}; present: {sorted(groups)}"
        )
    return RegionChoice(
        regions=tuple(groups[chosen]),
        fingerprint=chosen,
        not_materialized=sorted(wanted - done),
        other_configurations={fp: rs for fp, rs in groups.items() if fp != chosen},
    )


@dataclass
class SyntheticResult:
    """What was written and from which regions."""

    output_file: Path
    n_samples: int
    regions_used: list[int]
    clip_counts: dict[int, int]  # every candidate region -> clips on disk
    regions_skipped: dict[int, int]  # candidates with fewer than min_clips_per_region clips -> their count
    regions_underfilled: dict[int, int]  # used regions with fewer clips than nper -> their count
    regions_window_cached: list[int]  # used regions whose peak-window cache was present (others: clips loaded)
    nper: int
    point_05: int
    dis_matrix: anatomy.DisMatrixSource
    clip_store: dict | None
    clip_store_rows: int  # clips the store holds (= every clip of the used regions), what nmm_idx indexes
    patch_sizes: np.ndarray = field(repr=False)
    sensor_snr: np.ndarray = field(repr=False)
    scale_ratio: np.ndarray = field(repr=False)


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise anatomy.AnatomyError(f"anatomy file {path} is missing ({what})")
    return path


def select_centre_regions(counts: dict[int, int], min_clips: int) -> tuple[dict[int, int], dict[int, int]]:
    """Split candidate regions into used (>= ``min_clips`` clips) and skipped ones."""
    used = {r: n for r, n in sorted(counts.items()) if n >= min_clips}
    skipped = {r: n for r, n in sorted(counts.items()) if n < min_clips}
    return used, skipped


def build_synthetic_source(
    request: SyntheticRequest, call_engine: Callable[..., object], log: Callable[[str], None] = print
) -> SyntheticResult:
    """Generate ``<source_dir>/<mode>_sample_source1.mat`` (and the clip store) over the candidate regions."""
    params = request.params
    if params.mode not in generator.MODES:
        raise ValueError(f"mode {params.mode!r} is not one of {sorted(generator.MODES)}")
    anatomy_dir = Path(request.anatomy_dir)
    source_dir = Path(request.source_dir)
    inflated = _require(anatomy_dir / anatomy.INFLATED_FILE, "variable centre")
    mapping = _require(anatomy_dir / anatomy.REGION_MAPPING_FILE, "variable nbs")
    leadfield = _require(confined_path(anatomy_dir, params.leadfield), "variable fwd")
    dis_matrix = anatomy.ensure_dis_matrix(anatomy_dir, source_dir)
    nbs = anatomy.load_neighbours(mapping)
    n_all = len(nbs)

    clips_root = clip_root(source_dir, params.filename)
    bad = [r for r in request.candidate_regions if not 0 <= r < n_all]
    if bad:
        raise ValueError(f"regions {bad[:10]} are outside 0..{n_all - 1}")
    counts = clips.clip_counts(clips_root, sorted(set(request.candidate_regions)))
    used, skipped = select_centre_regions(counts, params.min_clips_per_region)
    if not used:
        raise clips.NoClipsError(
            f"no region has at least {params.min_clips_per_region} clip(s) under {clips_root}/a<r>/nmm_<k>.mat "
            f"(checked {len(counts)} region(s): {sorted(counts)[:20]}{' …' if len(counts) > 20 else ''}); "
            "run the per-region clip extraction (nmm_spikes) first"
        )
    settings = generator.MODES[params.mode]
    offsets = clips.clip_offsets(used)
    usable = {r: min(n, settings.nper) for r, n in used.items()}
    cached = (
        []
        if params.faithful_window  # the cache holds the fixed window only
        else [r for r, n in usable.items() if clips.window_cache_covers(clips_root, r, n, n_all)]
    )
    log(
        f"synthetic source: {len(used)} centre regions, {sum(used.values())} clips, {len(skipped)} skipped, "
        f"{len(cached)} with a peak-window cache"
    )

    output_file = confined_path(source_dir, generator.output_name(params.mode))
    source_dir.mkdir(parents=True, exist_ok=True)
    store_file = confined_path(source_dir, generator.clip_store_name(params.mode))
    if params.write_clip_store:  # fail in a second, not after the generator ran
        clips.check_clip_store_space(store_file, sum(used.values()), n_all)
    # One synthetic step per source folder at a time; a killed one left its work folder and temp files behind.
    with exclusive_lock(confined_path(source_dir, ".locks", "synthetic_source.lock"), "the synthetic source"):
        remove_stale_work_dirs(source_dir, WORK_DIR_PREFIX)
        remove_stale_temp_files(source_dir)
        with tempfile.TemporaryDirectory(prefix=WORK_DIR_PREFIX, dir=source_dir) as work:
            random = generator.draw_random_inputs(params.seed, nbs, len(used), settings.n_iter, params.n_sources)
            staged_output = Path(work) / output_file.name
            inputs = generator.GeneratorInputs(
                inflated_file=inflated,
                region_mapping_file=mapping,
                leadfield_file=leadfield,
                dis_matrix_file=dis_matrix.path,
                clips_root=clips_root,
                output_file=staged_output,
                clip_counts=usable,
                window_cached=frozenset(cached),
                clip_offsets=offsets,
                mode=params.mode,
                n_sources=params.n_sources,
                faithful_window=params.faithful_window,
            )
            params_file = Path(work) / "params.mat"
            with naming_path(params_file):
                generator.write_generator_params(params_file, inputs, random)
            generator.run_generator(call_engine, params_file)
            if not staged_output.is_file():
                raise RuntimeError(f"the generator finished without writing {staged_output}")
            result_vars = scipy.io.loadmat(
                staged_output, variable_names=["selected_region", "sensor_snr", "scale_ratio"]
            )
            store = None
            if params.write_clip_store:
                # Written before the source file is moved into place: the source never points into a stale store.
                with naming_path(store_file):
                    store = clips.write_clip_store(store_file, clips_root, used, n_all)
            os.replace(staged_output, output_file)

    selected = result_vars["selected_region"]
    return SyntheticResult(
        output_file=output_file,
        n_samples=int(selected.shape[0]),
        regions_used=sorted(used),
        clip_counts=counts,
        regions_skipped=skipped,
        regions_underfilled={r: n for r, n in used.items() if n < settings.nper},
        regions_window_cached=cached,
        nper=settings.nper,
        point_05=random.point_05,
        dis_matrix=dis_matrix,
        clip_store=store,
        clip_store_rows=sum(used.values()),
        patch_sizes=(selected != generator.NAN_NUMBER).sum(axis=2).ravel(),
        sensor_snr=result_vars["sensor_snr"].ravel(),
        scale_ratio=result_vars["scale_ratio"].ravel(),
    )


def regions_from_partition_keys(keys: Iterable[str]) -> list[int]:
    """Region ids from ``regions`` partition keys (non-numeric keys are ignored)."""
    return sorted(int(k) for k in keys if k.isdigit())
