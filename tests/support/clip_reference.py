"""Test-only: synthetic raw NMM files with injected spikes and an independent NumPy re-derivation of the clips.

The reference follows the algorithm (docs/deepsif.md, "Clip extraction") step by step, written the slow, obvious way (full series
projected through the lead field, per-column loops), so that it shares no code or shortcut with
``matlab/process_region_clips.m``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.io

DS_FACTOR = 4
TRANSIENT = 1000
RAW_DT_MS = 0.5


@dataclass(frozen=True)
class SmallAnatomy:
    """A reduced anatomy: ``n_fs`` cortical columns, ``n_fs + len(remap)`` TVB columns, remap lists 0-based."""

    n_fs: int
    remap_fs: tuple[int, ...]  # fs column c (0-based) ...
    remap_tvb: tuple[int, ...]  # ... is filled from this TVB column (0-based)

    @property
    def n_tvb(self) -> int:
        return self.n_fs + len(self.remap_fs)

    def clip_options(self) -> dict:
        """The options that tell the MATLAB code about this anatomy (1-based columns)."""
        return {
            "n_fs_regions": self.n_fs,
            "remap_fs": np.array([c + 1 for c in self.remap_fs], dtype=float),
            "remap_tvb": np.array([c + 1 for c in self.remap_tvb], dtype=float),
        }

    def tvb_column(self, fs_column: int) -> int:
        return dict(zip(self.remap_fs, self.remap_tvb, strict=True)).get(fs_column, fs_column)


SMALL = SmallAnatomy(n_fs=12, remap_fs=(2, 5, 8, 10), remap_tvb=(12, 15, 14, 13))
REAL = SmallAnatomy(n_fs=994, remap_fs=(7, 325, 921, 949), remap_tvb=(994, 997, 996, 995))


def spike_waveform(t_ms: np.ndarray) -> np.ndarray:
    """The injected spike: 12·exp(−((t−60)/20)²) − 4·exp(−((t−160)/40)²), t in ms after onset."""
    return 12.0 * np.exp(-(((t_ms - 60.0) / 20.0) ** 2)) - 4.0 * np.exp(-(((t_ms - 160.0) / 40.0) ** 2))


@dataclass
class RawSpec:
    """One iteration's synthetic raw data: spike onsets per TVB column, in raw samples (2 kHz)."""

    n_segments: int
    segment_samples: int
    onsets: dict[int, list[int]] = field(default_factory=dict)
    noise_std: float = 0.05
    seed: int = 0

    @property
    def n_raw(self) -> int:
        return self.n_segments * self.segment_samples


def make_raw(spec: RawSpec, n_tvb: int) -> np.ndarray:
    """(n_raw, n_tvb) float32: N(0, noise_std) plus the waveform at every onset of every listed column."""
    rng = np.random.default_rng(spec.seed)
    data = rng.normal(0.0, spec.noise_std, size=(spec.n_raw, n_tvb))
    width = int(400 / RAW_DT_MS)  # 400 ms covers the waveform
    shape = spike_waveform(np.arange(width) * RAW_DT_MS)
    for column, onsets in spec.onsets.items():
        for onset in onsets:
            stop = min(onset + width, spec.n_raw)
            data[onset:stop, column] += shape[: stop - onset]
    return data.astype(np.float32)


def write_original(raw: np.ndarray, spec: RawSpec, raw_dir: Path, iteration: int, region: int) -> list[Path]:
    """Original layout: ``mean_iter_{m}_a_iter_{r}_{k}.mat`` with ``time`` (1,T), ``data`` (T,N) f32, ``A``."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(spec.n_segments):
        rows = slice(k * spec.segment_samples, (k + 1) * spec.segment_samples)
        time = (np.arange(rows.start, rows.stop) + 1) * RAW_DT_MS
        path = raw_dir / f"mean_iter_{iteration}_a_iter_{region}_{k}.mat"
        scipy.io.savemat(
            path, {"time": time[None, :], "data": raw[rows], "A": np.full((1, raw.shape[1]), 3.25)}
        )
        paths.append(path)
    return paths


def downsample_remap(raw: np.ndarray, anatomy: SmallAnatomy) -> np.ndarray:
    """Decimation: drop 1000 rows, keep rows 1, 5, 9, …, copy the remapped columns, keep the fs columns."""
    kept = raw[TRANSIENT:][::DS_FACTOR].copy()
    for fs_col, tvb_col in zip(anatomy.remap_fs, anatomy.remap_tvb, strict=True):
        kept[:, fs_col] = kept[:, tvb_col]
    return kept[:, : anatomy.n_fs]


def write_compact(nmm: np.ndarray, raw_dir: Path, iteration: int, region: int) -> Path:
    """Compact layout: ``mean_iter_{m}_a_iter_{r}_ds.mat`` with ``all_data`` single, ``all_time`` double."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    path = raw_dir / f"mean_iter_{iteration}_a_iter_{region}_ds.mat"
    all_time = ((np.arange(nmm.shape[0]) * DS_FACTOR + TRANSIENT + 1) * RAW_DT_MS)[:, None]
    scipy.io.savemat(path, {"all_data": nmm.astype(np.float32), "all_time": all_time})
    return path


# ---- the reference algorithm ------------------------------------------------------------------------------------
@dataclass
class IterationClips:
    spike_time: list[int]  # 1-based downsampled peak times of the kept spikes
    clips: list[np.ndarray]  # (500, n_fs) float32 each
    n_peaks: int  # peaks surviving the edge and separation rules (all channels)


def reference_iteration(nmm: np.ndarray, region: int, fwd: np.ndarray) -> IterationClips:
    """Clips of one iteration by the algorithm's rules, from the downsampled remapped series ``nmm`` (T, n_fs)."""
    n_rows, n_cols = nmm.shape
    src = region  # 0-based column

    # Peaks: values < 8 zeroed; strict neighbours; (t, channel) ordered by time then channel.
    peaks: list[tuple[int, int]] = []
    for c in range(n_cols):
        x = np.where(nmm[:, c] < 8, 0.0, nmm[:, c].astype(np.float64))
        rising = np.diff(x) > 0  # rising[i]: x[i+1] > x[i]
        for i in np.flatnonzero(rising[:-1] & ~(np.diff(x)[1:] >= 0)) + 1:
            peaks.append((int(i) + 1, c))  # 1-based time
    peaks.sort()
    surviving = []
    for j, (t, c) in enumerate(peaks):
        separated = j == 0 or t - peaks[j - 1][0] > 100
        if t - 249 > 0 and t + 250 < n_rows and separated:
            surviving.append((t, c))

    # Rule 1 / rule 2 (block start keeps a peak at t = 500k in its clip; block must end inside the series).
    def block_start(t: int) -> int:
        return ((t - 1) // 500) * 500 + 1

    other_times = [t for t, c in surviving if c != src]
    kept = []
    for t, c in surviving:
        if c != src:
            continue
        start = block_start(t)
        clear = all(not (start - 200 <= u <= start + 699) for u in other_times)
        if clear and start + 499 <= n_rows:
            kept.append(t)
    if not kept:
        return IterationClips([], [], len(surviving))

    # alpha: project the WHOLE series, demean, take the 200 rows around every kept spike.
    series = nmm.astype(np.float64)
    signal_eeg = np.outer(series[:, src], fwd[:, src])
    others = [c for c in range(n_cols) if c != src]
    noise_eeg = series[:, others] @ fwd[:, others].T
    signal_eeg -= signal_eeg.mean(axis=0)
    noise_eeg -= noise_eeg.mean(axis=0)
    rows = np.clip(np.concatenate([np.arange(t - 99, t + 101) for t in kept]), 1, n_rows) - 1
    power_signal = np.sum(signal_eeg[rows] ** 2) / rows.size
    power_noise = np.sum(noise_eeg[rows] ** 2) / rows.size
    alpha = np.sqrt(10 ** (15 / 10) * power_noise / power_signal)

    # Rescale the spike on the demeaned source channel.
    mean_src = series[:, src].mean()
    demeaned = series[:, src] - mean_src
    for t in kept:
        window = demeaned[t - 250 : t + 250].copy()  # 1-based t-249 .. t+250; peak at 1-based index 250

        def near_zero(threshold: float, w: np.ndarray = window) -> list[int]:
            return [i + 1 for i in range(500) if abs(w[i]) < threshold and 50 <= i + 1 <= 450]

        threshold = 0.1
        small = near_zero(threshold)
        while not [i for i in small if i < 250]:
            threshold += 0.05
            small = near_zero(threshold)
        begin = [i for i in small if i < 250][-1]
        trough = int(np.argmin(window[300:400])) + 1 + 301  # 1-based argmin in 301..400, plus the off-by-one
        while not [i for i in small if i > trough]:
            threshold += 0.05
            small = near_zero(threshold)
        end = next(i for i in small if i > trough)
        window[begin - 1 : end] *= alpha
        demeaned[t - 250 : t + 250] = window
    source = demeaned + mean_src

    clips = []
    for t in kept:
        start = block_start(t) - 1
        clip = nmm[start : start + 500].copy()
        clip[:, src] = source[start : start + 500].astype(np.float32)
        clips.append(clip)
    return IterationClips(kept, clips, len(surviving))


def save_leadfield(path: Path, fwd: np.ndarray) -> Path:
    scipy.io.savemat(path, {"fwd": fwd})
    return path


def small_leadfield(anatomy: SmallAnatomy, seed: int = 7) -> np.ndarray:
    """A (75, n_fs) lead field with values of the real one's order of magnitude."""
    return np.random.default_rng(seed).normal(0.0, 300.0, size=(75, anatomy.n_fs))
