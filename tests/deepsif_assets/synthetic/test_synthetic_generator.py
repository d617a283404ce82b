"""The Octave generator through the pure pipeline: layout, patches, determinism, clip policy, errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import scipy.io

from deepsif_assets.synthetic.anatomy import AnatomyError
from deepsif_assets.synthetic.clips import ClipStoreSpaceError, NoClipsError
from deepsif_assets.synthetic.pipeline import build_synthetic_source
from tests.support import clipfactory
from tests.support.clipfactory import N_REGIONS, full_counts, requires_octave, synthetic_request
from tests.support.small_filesystem import small_filesystem

PAD = 15213

pytestmark = requires_octave


def test_shapes_padding_and_ordering(full_run):
    result, out, _ = full_run
    n_iter, n_sources = 3, 2
    n = 4 * n_iter * N_REGIONS
    assert out["selected_region"].shape == (n, n_sources, 70)
    assert out["mag_change"].shape == (n, n_sources, 70)
    assert out["scale_ratio"].shape == (n, n_sources, 2)
    for name in ("nmm_idx", "random_samples"):
        assert out[name].shape == (n, n_sources)
    assert out["current_snr"].shape == (n, 1)
    np.testing.assert_array_equal(out["current_snr"].ravel(), np.tile([5, 10, 15, 20], n // 4))
    np.testing.assert_array_equal(out["sensor_snr"], out["current_snr"])
    assert result.n_samples == n

    sel = out["selected_region"]
    pad = sel == PAD
    # padding only at the tail, real ids are 0-based regions, no repeats
    assert not np.any(pad[:, :, :-1] & ~pad[:, :, 1:])
    assert np.all((sel[~pad] >= 0) & (sel[~pad] < N_REGIONS))
    assert np.all(np.isin(out["mag_change"] == PAD, [True, False]))
    np.testing.assert_array_equal(out["mag_change"] == PAD, pad)
    # row s = rep + 4*(kk-1) + 4*n_iter*(ii-1): source 1 is centred on region ii for 4*n_iter consecutive rows
    np.testing.assert_array_equal(sel[:, 0, 0], np.repeat(np.arange(N_REGIONS), 4 * n_iter))
    # the 4 copies of one (centre, variation) share their patches
    np.testing.assert_array_equal(sel[0::4], sel[3::4])


def test_patches_connected_and_bounded(full_run, neighbours):
    _, out, _ = full_run
    sel = out["selected_region"]
    unique_patches = {tuple(int(x) for x in row if x != PAD) for row in sel[::4].reshape(-1, 70)}
    sizes = [len(p) for p in unique_patches]
    assert max(sizes) <= 70 and min(sizes) >= 2
    for patch in unique_patches:
        assert len(set(patch)) == len(patch)
        members = set(patch)
        seen, stack = {patch[0]}, [patch[0]]
        while stack:
            for j in neighbours[stack.pop()] & members:
                if j not in seen:
                    seen.add(j)
                    stack.append(j)
        assert seen == members, f"patch {patch} is not connected through nbs"


def test_clip_choice_respects_counts(full_run):
    result, out, _ = full_run
    counts = full_counts()
    centres = out["selected_region"][:, :, 0].astype(int)
    samples = out["random_samples"].astype(int)
    available = np.minimum(10, np.vectorize(counts.get)(centres))
    assert np.all(samples >= 1) and np.all(samples <= available)
    # a region with one clip always uses nmm_1; one with 12 clips is capped at nper = 10 but uses several
    assert np.all(samples[centres == 6] == 1)
    assert samples[centres == 0].max() > 3 and samples[centres == 0].max() <= 10
    # nmm_idx points into the region-major clip store: offset of the centre + k - 1
    offsets = np.concatenate([[0], np.cumsum([counts[r] for r in range(N_REGIONS)])[:-1]])
    np.testing.assert_array_equal(out["nmm_idx"], offsets[centres] + samples - 1)
    assert result.regions_underfilled == {r: n for r, n in counts.items() if n < 10}


def _independent_dis(anatomy_dir):
    pos = scipy.io.loadmat(anatomy_dir / "fs_cortex_20k.mat")["pos"].astype(float)
    rm = scipy.io.loadmat(anatomy_dir / "fs_cortex_20k_region_mapping.mat")["rm"].ravel().astype(int)
    centroids = np.array([pos[rm == r].mean(axis=0) for r in range(N_REGIONS)])
    return np.linalg.norm(centroids[:, None, :] - centroids[None, :, :], axis=2)


def _original_alpha(clip, patch, fwd, snrs, window_fixed=True):
    """The original find_alpha + calcualate_SNR, brute force (all columns projected)."""
    data = clip.astype(np.float64)
    centre = patch[0]
    shape = data[:, centre] / data[:, centre].max()
    peak = int(np.argmax(shape)) + 1  # 1-based
    lo, hi = max(peak - 50, 1), min(peak + 50, 500)
    rows = np.arange(lo, hi + 1) - 1
    data[:, patch] = shape[:, None]
    sig = data[:, patch] @ fwd[:, patch].T
    others = np.setdiff1d(np.arange(data.shape[1]), patch)
    noise = data[:, others] @ fwd[:, others].T
    sig -= sig.mean(axis=0)
    noise -= noise.mean(axis=0)
    ps = np.sum(sig[rows] ** 2) / rows.size
    pn = np.sum(noise[rows] ** 2) / rows.size
    return np.sqrt(10 ** (np.asarray(snrs) / 10) * pn / ps)


def test_scale_ratio_and_mag_change_match_numpy(full_run, anatomy_dir):
    _, out, source = full_run
    fwd = scipy.io.loadmat(anatomy_dir / "leadfield_75_20k.mat")["fwd"].astype(float)
    dis = _independent_dis(anatomy_dir)
    point_05 = float(out["point_05"].ravel()[0])
    assert 40 <= point_05 <= 60
    sigma = 0.8493 * point_05
    rng = np.random.default_rng(123)
    n = out["selected_region"].shape[0]
    for s in rng.choice(n, 25, replace=False):
        for k in range(2):
            patch = [int(x) for x in out["selected_region"][s, k] if x != PAD]
            clip_no = int(out["random_samples"][s, k])
            clip = scipy.io.loadmat(source / "nmm_spikes" / f"a{patch[0]}" / f"nmm_{clip_no}.mat")["data"]
            expected = _original_alpha(clip, patch, fwd, [10, 15])
            np.testing.assert_allclose(out["scale_ratio"][s, k], expected, rtol=1e-5)
            decay = np.exp(-(dis[patch[0], patch] ** 2) / (2 * sigma**2))
            np.testing.assert_allclose(out["mag_change"][s, k, : len(patch)], decay, rtol=1e-9, atol=1e-12)
            assert out["mag_change"][s, k, 0] == 1.0


def test_seed_determinism_train_mode(make_source, octave, anatomy_dir):
    counts = {2: 3, 40: 1, 500: 2}
    runs = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        source = make_source(counts, f"seed_{name}")
        result = build_synthetic_source(
            synthetic_request(
                anatomy_dir, source, (2, 40, 500), mode="train", seed=seed, write_clip_store=False
            ),
            octave.call,
        )
        runs.append(scipy.io.loadmat(result.output_file))
    first, same, other = runs
    assert first["selected_region"].shape == (4 * 48 * 3, 2, 70)
    assert first["scale_ratio"].shape == (4 * 48 * 3, 2, 6)
    for name in ("selected_region", "nmm_idx", "random_samples", "scale_ratio", "mag_change", "current_snr"):
        np.testing.assert_array_equal(first[name], same[name], err_msg=name)
    assert not np.array_equal(first["selected_region"], other["selected_region"])
    assert not np.array_equal(first["random_samples"], other["random_samples"])
    # train mode sweeps each centre's candidates: source-1 patches of one centre differ across variations
    centre_rows = first["selected_region"][: 4 * 48 : 4, 0]
    assert len({tuple(r) for r in centre_rows}) > 10


def test_clip_store_rows_match_clip_files(make_source, octave, anatomy_dir):
    import h5py

    counts = {10: 2, 11: 4, 300: 1}
    source = make_source(counts, "store")
    result = build_synthetic_source(
        synthetic_request(anatomy_dir, source, (10, 11, 300, 301), mode="test"), octave.call
    )
    assert result.regions_used == [10, 11, 300]
    assert result.regions_skipped == {301: 0}
    out = scipy.io.loadmat(result.output_file)
    with h5py.File(source / "test_sample_nmm.h5", "r") as h5:
        assert h5["data"].shape == (7, 500, N_REGIONS)
        np.testing.assert_array_equal(h5["region"][:], [10, 10, 11, 11, 11, 11, 300])
        assert "nmm_idx" in h5.attrs["nmm_idx_formula"]
        for s in (0, 5, 17, 30):
            for k in range(2):
                centre = int(out["selected_region"][s, k, 0])
                clip_file = (
                    source / "nmm_spikes" / f"a{centre}" / f"nmm_{int(out['random_samples'][s, k])}.mat"
                )
                np.testing.assert_array_equal(
                    h5["data"][int(out["nmm_idx"][s, k])], scipy.io.loadmat(clip_file)["data"]
                )


def test_faithful_window_errors_near_clip_edge(tmp_path, octave, anatomy_dir):
    from resources.octave import OctaveError

    clipfactory.write_clip(tmp_path / "nmm_spikes" / "a7" / "nmm_1.mat", region=7, peak=20)
    request = dict(anatomy_dir=anatomy_dir, source_dir=tmp_path, candidate_regions=(7,), mode="test")
    with pytest.raises(OctaveError, match="faithful_window"):
        build_synthetic_source(
            synthetic_request(**request, faithful_window=True, write_clip_store=False), octave.call
        )
    result = build_synthetic_source(synthetic_request(**request, write_clip_store=False), octave.call)
    assert np.all(np.isfinite(scipy.io.loadmat(result.output_file)["scale_ratio"]))


def test_no_clips_is_a_clear_error(tmp_path, octave, anatomy_dir):
    (tmp_path / "nmm_spikes" / "a3").mkdir(parents=True)
    with pytest.raises(NoClipsError, match=r"nmm_spikes/a<r>/nmm_<k>\.mat"):
        build_synthetic_source(synthetic_request(anatomy_dir, tmp_path, (3, 4), mode="test"), octave.call)
    assert not (tmp_path / "test_sample_source1.mat").exists()


@pytest.mark.parametrize("missing", ["fs_cortex_20k_inflated.mat", "leadfield_75_20k.mat"])
def test_missing_anatomy_is_a_clear_error(tmp_path, make_source, octave, anatomy_dir, missing):
    partial = tmp_path / "anatomy"
    shutil.copytree(anatomy_dir, partial, ignore=shutil.ignore_patterns(missing, "*.zip"))
    source = make_source({1: 1}, "missing_anatomy")
    with pytest.raises(AnatomyError, match=missing):
        build_synthetic_source(synthetic_request(partial, source, (1,), mode="test"), octave.call)


def _write_window_caches(octave, source, counts: dict[int, int]) -> None:
    """The caches as the extraction step writes them (real ``write_clip_windows.m``)."""
    clips_root = source / "nmm_spikes"
    (clips_root / "clip_windows").mkdir(exist_ok=True)
    for region, n in counts.items():
        octave.call(
            "write_clip_windows",
            str(clips_root / f"a{region}"),
            region,
            n,
            str(clips_root / "clip_windows" / f"a{region}.mat"),
        )


def test_window_cache_matches_numpy_window_rule(tmp_path, octave):
    source = tmp_path / "source"
    peaks = [3, 250, 497]  # windows clipped at the start, full, clipped at the end
    for k, peak in enumerate(peaks, start=1):
        clipfactory.write_clip(source / "nmm_spikes" / "a5" / f"nmm_{k}.mat", 5, peak, seed=k)
    _write_window_caches(octave, source, {5: len(peaks)})
    cache = scipy.io.loadmat(source / "nmm_spikes" / "clip_windows" / "a5.mat")
    assert int(cache["n_clips"].ravel()[0]) == 3 and cache["window_rows"].dtype == np.float32
    for k in range(1, 4):
        data = scipy.io.loadmat(source / "nmm_spikes" / "a5" / f"nmm_{k}.mat")["data"].astype(float)
        shape = data[:, 5] / data[:, 5].max()
        peak = int(np.argmax(shape))  # 0-based
        rows = np.arange(max(peak - 50, 0), min(peak + 50, 499) + 1)
        assert int(cache["window_start"].ravel()[k - 1]) == rows[0] + 1
        assert int(cache["window_length"].ravel()[k - 1]) == rows.size
        np.testing.assert_array_equal(cache["window_rows"][: rows.size, :, k - 1], data[rows].astype(np.float32))
        np.testing.assert_allclose(cache["clip_mean"][k - 1], data.mean(axis=0), rtol=1e-12, atol=1e-12)
        dm = shape - shape.mean()
        np.testing.assert_allclose(cache["shape_power"].ravel()[k - 1], np.sum(dm[rows] ** 2), rtol=1e-12)


def test_window_cache_gives_bit_identical_output(make_source, octave, anatomy_dir):
    counts = {2: 3, 40: 1, 500: 4, 993: 2}
    source = make_source(counts, "window_cache")
    request = synthetic_request(anatomy_dir, source, tuple(counts), mode="test", seed=3, write_clip_store=False)
    from_clips = build_synthetic_source(request, octave.call)
    assert from_clips.regions_window_cached == []
    expected = scipy.io.loadmat(from_clips.output_file)

    # Region 500's cache covers only 2 of its 4 clips (as if stale): its clips are loaded instead.
    _write_window_caches(octave, source, {2: 3, 40: 1, 500: 2, 993: 2})
    # Proof that cached regions' clips are not read: replace them (hard links into the shared pool) by junk.
    for clip in (source / "nmm_spikes" / "a2").glob("nmm_*.mat"):
        clip.unlink()
        clip.write_bytes(b"not a MAT file")
    from_cache = build_synthetic_source(request, octave.call)
    assert from_cache.regions_window_cached == [2, 40, 993]
    got = scipy.io.loadmat(from_cache.output_file)
    for name in ("selected_region", "nmm_idx", "random_samples", "scale_ratio", "mag_change", "sensor_snr"):
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def test_matlab_backend_gives_the_same_file(make_source, octave, anatomy_dir, fake_matlab):
    """The generator through the MATLAB backend (``matlab -batch``; a fake that runs Octave) = the Octave run."""
    from resources.octave import OctaveResource

    counts = {7: 2, 300: 3}
    source = make_source(counts, "matlab_backend")
    _write_window_caches(octave, source, {7: 2})  # one region from its cache, one from its clips
    request = synthetic_request(anatomy_dir, source, tuple(counts), mode="test", seed=11, write_clip_store=False)
    expected = scipy.io.loadmat(build_synthetic_source(request, octave.call).output_file)
    matlab = OctaveResource(backend="matlab")
    # one computational thread in both, as the pipeline runs them: BLAS products differ in the last bits otherwise
    command = matlab.matlab_command("generate_synthetic_source", ["p.mat"])
    assert command[:3] == [str(fake_matlab), "-singleCompThread", "-batch"]
    got = scipy.io.loadmat(build_synthetic_source(request, matlab.call).output_file)
    for name in ("selected_region", "nmm_idx", "random_samples", "scale_ratio", "mag_change", "sensor_snr"):
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def _copy_clips(source, counts: dict[int, int], clip_pool) -> object:
    """Real copies (a small file system cannot hold hard links to the pool)."""
    for region, n in counts.items():
        (source / "nmm_spikes" / f"a{region}").mkdir(parents=True)
        for k in range(1, n + 1):
            shutil.copy(clip_pool[k], source / "nmm_spikes" / f"a{region}" / f"nmm_{k}.mat")
    return source


def test_clip_store_without_space_fails_before_any_work(tmp_path, clip_pool, octave, anatomy_dir):
    """On a real small file system: one clear error naming the store, the previous output left untouched."""
    counts = {10: 3, 11: 3}
    with small_filesystem(tmp_path / "tiny", 64 * 2**20) as tiny:
        source = _copy_clips(tiny / "source", counts, clip_pool)
        request = dict(anatomy_dir=anatomy_dir, source_dir=source, candidate_regions=tuple(counts), mode="test")
        first = build_synthetic_source(synthetic_request(**request, write_clip_store=False), octave.call)
        before = {p: p.read_bytes() for p in source.rglob("*") if p.is_file()}
        store_bytes = 6 * 500 * N_REGIONS * 4
        (tiny / "ballast").write_bytes(bytes(shutil.disk_usage(tiny).free - store_bytes // 2))
        with pytest.raises(ClipStoreSpaceError, match=r"test_sample_nmm\.h5 needs 0\.01 GB .* free"):
            build_synthetic_source(synthetic_request(**request, seed=9), octave.call)
        assert {p: p.read_bytes() for p in source.rglob("*") if p.is_file()} == before
        assert first.output_file in before


def _mat_variables(path) -> dict:
    return {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}


def test_kill_9_during_the_synthetic_step_then_rerun(make_source, anatomy_dir, octave, tmp_path):
    """A kill leaves the step's work folder (≈ 8 MB of parameters in train mode); the next run removes it and
    writes exactly the uninterrupted file."""
    import os
    import signal
    import subprocess
    import sys
    import time

    counts = {3: 2, 4: 1, 6: 2}
    reference = build_synthetic_source(
        synthetic_request(anatomy_dir, make_source(counts, "uninterrupted"), tuple(counts), mode="test"), octave.call
    )
    source = make_source(counts, "killed")
    script = (
        "from resources.octave import OctaveResource\n"
        "from deepsif_assets.synthetic.pipeline import build_synthetic_source\n"
        "from tests.support.clipfactory import synthetic_request\n"
        f"build_synthetic_source(synthetic_request({str(anatomy_dir)!r}, {str(source)!r}, {tuple(counts)!r}, "
        "mode='test'), OctaveResource().call)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    deadline = time.monotonic() + 120
    while not list(source.glob(".synthetic-*/params.mat")):
        assert process.poll() is None and time.monotonic() < deadline, "the step never wrote its parameters"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert list(source.glob(".synthetic-*")), "the kill left the work folder behind"
    rerun = build_synthetic_source(synthetic_request(anatomy_dir, source, tuple(counts), mode="test"), octave.call)
    assert not list(source.glob(".synthetic-*")) and not list(source.glob(".*.tmp")), "leftovers removed"
    got, want = _mat_variables(rerun.output_file), _mat_variables(reference.output_file)
    assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in want)


def test_a_full_disk_in_the_synthetic_step_names_the_file(anatomy_dir, octave, clip_pool, tmp_path):
    from deepsif_assets.synthetic.anatomy import ensure_dis_matrix

    counts = {3: 2, 4: 1}
    with small_filesystem(tmp_path / "tiny", 64 * 2**20) as tiny:
        source = _copy_clips(tiny / "source", counts, clip_pool)
        ensure_dis_matrix(anatomy_dir, source)
        (tiny / "ballast").write_bytes(bytes(shutil.disk_usage(tiny).free - 2**20))  # the parameters need ≈ 8 MB
        with pytest.raises(OSError, match=r"No space left on device while writing .*params\.mat"):
            build_synthetic_source(
                synthetic_request(anatomy_dir, source, tuple(counts), mode="test", write_clip_store=False),
                octave.call,
            )
        assert not list(source.glob(".synthetic-*")), "the work folder is removed after the failure"
