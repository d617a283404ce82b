"""``matlab/process_region_clips.m`` in real Octave against the NumPy re-derivation of ``clip_reference``."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from resources.octave import OctaveError, OctaveResource, matlab_literal
from tests.support.clip_reference import (
    REAL,
    SMALL,
    RawSpec,
    downsample_remap,
    make_raw,
    reference_iteration,
    save_leadfield,
    small_leadfield,
    write_compact,
    write_original,
)

pytestmark = pytest.mark.skipif(
    shutil.which("octave-cli") is None, reason="GNU Octave (octave-cli) is not installed"
)

REGION = 2  # a remapped column of the small anatomy (filled from TVB column 12)
SEG = 12_000  # raw samples per segment (6 s at 2 kHz)
MATLAB_DIR = Path(__file__).resolve().parents[2] / "matlab"


def onset_for_peak(ds_peak: int) -> int:
    """Raw onset whose waveform peak (60 ms = 120 raw samples later) lands near 1-based downsampled row ds_peak."""
    return 1000 + (ds_peak - 1) * 4 - 120


def iteration_specs() -> list[RawSpec]:
    """Three iterations that exercise rule 1, rule 2, the separation rule and the edge rule."""
    src = SMALL.tvb_column(REGION)
    return [
        # iter 0: five source spikes, the first too close to the start (edge rule).
        RawSpec(2, SEG, {src: [onset_for_peak(t) for t in (150, 700, 1700, 2700, 4600)]}, seed=10),
        # iter 1: a peak on another channel near the 2nd source spike (rule 2), one 60 samples after (separation).
        RawSpec(
            2,
            SEG,
            {
                src: [onset_for_peak(t) for t in (600, 1800, 3300)],
                4: [onset_for_peak(2050)],
                7: [onset_for_peak(3360)],
            },
            seed=11,
        ),
        # iter 2: two source spikes.
        RawSpec(2, SEG, {src: [onset_for_peak(t) for t in (1200, 4300)]}, seed=12),
    ]


@pytest.fixture(scope="module")
def small_case(tmp_path_factory):
    """Raw data (original format) for REGION, its lead field, and the reference result per iteration."""
    root = tmp_path_factory.mktemp("small")
    fwd = small_leadfield(SMALL)
    leadfield = save_leadfield(root / "leadfield.mat", fwd)
    raws = []
    for m, spec in enumerate(iteration_specs()):
        raw = make_raw(spec, SMALL.n_tvb)
        write_original(raw, spec, root / "source" / "raw_nmm" / f"a{REGION}", m, REGION)
        raws.append(raw)
    references = [reference_iteration(downsample_remap(raw, SMALL), REGION, fwd) for raw in raws]
    return root, leadfield, raws, references


def read_clip(source: Path, region: int, k: int, filename: str = "spikes") -> np.ndarray:
    return scipy.io.loadmat(source / f"nmm_{filename}" / f"a{region}" / f"nmm_{k}.mat")["data"]


def read_marker(source: Path, region: int, m: int, filename: str = "spikes") -> dict:
    return scipy.io.loadmat(
        source / f"nmm_{filename}" / "clip_info" / f"iter{m}" / f"iter_{m}_i_{region}.mat"
    )


def read_window_cache(source: Path, region: int, filename: str = "spikes") -> dict:
    return scipy.io.loadmat(source / f"nmm_{filename}" / "clip_windows" / f"a{region}.mat")


def run(octave: OctaveResource, region: int, source: Path, leadfield: Path, **options):
    opts = {**SMALL.clip_options(), **options}
    return octave.call("process_region_clips", region, str(source), str(leadfield), "spikes", opts, nout=1)


def test_reference_exercises_every_rule(small_case):
    _root, _lf, _raws, references = small_case
    # Sanity of the synthetic design (so the comparison below covers edge, separation and rule-2 paths).
    assert [len(r.spike_time) for r in references] == [4, 2, 2]
    assert (
        references[1].n_peaks == 4
    )  # 3 source + 1 rule-2 peak; the 7th-channel peak fell to the separation rule


def test_clips_match_numpy_reference(octave, small_case, tmp_path):
    root, leadfield, _raws, references = small_case
    source = tmp_path / "source"
    shutil.copytree(root / "source", source)
    summary = run(octave, REGION, source, leadfield)

    expected_counts = [len(r.spike_time) for r in references]
    assert np.ravel(summary["clips_per_iteration"]).tolist() == expected_counts
    k = 0
    for m, ref in enumerate(references):
        marker = read_marker(source, REGION, m)
        assert marker["num_spike"].item() == sum(expected_counts[: m + 1])  # cumulative
        assert marker["spike_time"].shape == (1, len(ref.spike_time))
        assert marker["spike_time"].ravel().tolist() == ref.spike_time
        for clip in ref.clips:
            k += 1  # numbering continues across iterations
            data = read_clip(source, REGION, k)
            assert data.shape == (500, SMALL.n_fs) and data.dtype == np.float32
            np.testing.assert_allclose(data, clip, rtol=1e-5, atol=1e-4)
    clip_files = sorted((source / "nmm_spikes" / f"a{REGION}").iterdir())
    assert len(clip_files) == k == sum(expected_counts)  # no temporary or extra files


def test_compact_ds_file_gives_identical_clips(octave, small_case, tmp_path):
    root, leadfield, raws, _refs = small_case
    original = tmp_path / "original"
    shutil.copytree(root / "source", original)
    run(octave, REGION, original, leadfield)
    compact = tmp_path / "compact"
    for m, raw in enumerate(raws):
        write_compact(downsample_remap(raw, SMALL), compact / "raw_nmm" / f"a{REGION}", m, REGION)
    run(octave, REGION, compact, leadfield)
    names = sorted(p.name for p in (original / "nmm_spikes" / f"a{REGION}").iterdir())
    assert names == sorted(p.name for p in (compact / "nmm_spikes" / f"a{REGION}").iterdir())
    for name in names:
        a = scipy.io.loadmat(original / "nmm_spikes" / f"a{REGION}" / name)["data"]
        b = scipy.io.loadmat(compact / "nmm_spikes" / f"a{REGION}" / name)["data"]
        np.testing.assert_array_equal(a, b)


def test_resume_numbers_from_previous_marker(octave, small_case, tmp_path):
    """A call that only did iteration 0, then a call over all iterations: same files as one uninterrupted run."""
    root, leadfield, _raws, references = small_case
    source = tmp_path / "source"
    shutil.copytree(root / "source", source)
    run(octave, REGION, source, leadfield, iterations=[0])
    first = read_clip(source, REGION, 1)
    assert read_window_cache(source, REGION)["n_clips"].item() == len(references[0].spike_time)
    summary = run(octave, REGION, source, leadfield)  # iteration 0 skipped by its marker
    assert np.ravel(summary["clips_per_iteration"]).tolist() == [len(r.spike_time) for r in references]
    np.testing.assert_array_equal(read_clip(source, REGION, 1), first)
    total = sum(len(r.spike_time) for r in references)
    assert len(list((source / "nmm_spikes" / f"a{REGION}").iterdir())) == total
    np.testing.assert_allclose(
        read_clip(source, REGION, total), references[2].clips[-1], rtol=1e-5, atol=1e-4
    )
    # The peak-window cache was rewritten for the whole clip set (the synthetic step reads it instead).
    cache = read_window_cache(source, REGION)
    assert cache["n_clips"].item() == total and cache["region"].item() == REGION
    for k in range(1, total + 1):
        clip = read_clip(source, REGION, k)
        start, length = int(cache["window_start"][0, k - 1]), int(cache["window_length"][0, k - 1])
        peak = int(np.argmax(clip[:, REGION]))
        assert start - 1 == max(peak - 50, 0) and start - 1 + length - 1 == min(peak + 50, 499)
        np.testing.assert_array_equal(cache["window_rows"][:length, :, k - 1], clip[start - 1 : start - 1 + length])


def test_zero_clip_region_writes_markers(octave, tmp_path):
    fwd = small_leadfield(SMALL)
    leadfield = save_leadfield(tmp_path / "lf.mat", fwd)
    source = tmp_path / "source"
    for m in range(3):
        spec = RawSpec(1, 8000, {}, seed=m)
        write_original(make_raw(spec, SMALL.n_tvb), spec, source / "raw_nmm" / "a0", m, 0)
    summary = run(octave, 0, source, leadfield)
    assert summary["num_spike"] == 0
    for m in range(3):
        marker = read_marker(source, 0, m)
        assert marker["num_spike"].item() == 0
        assert marker["spike_time"].size == 0
    assert list((source / "nmm_spikes" / "a0").iterdir()) == []


@pytest.mark.parametrize(
    "onsets",
    [
        pytest.param({"src": [1500], 4: [1650]}, id="lone-source-spike-rejected-by-rule-2"),
        pytest.param({4: [1500]}, id="lone-peak-on-other-channel"),
        pytest.param({"src": [20]}, id="lone-peak-failing-edge-rule"),
    ],
)
def test_lone_peak_cases_give_zero_clips(octave, tmp_path, onsets):
    """Inputs on which the original crashes ("nonconformant arguments"): zero clips, marker written."""
    fwd = small_leadfield(SMALL)
    leadfield = save_leadfield(tmp_path / "lf.mat", fwd)
    src = SMALL.tvb_column(REGION)
    resolved = {(src if c == "src" else c): [onset_for_peak(t) for t in ts] for c, ts in onsets.items()}
    spec = RawSpec(1, 10_000, resolved, seed=3)
    raw = make_raw(spec, SMALL.n_tvb)
    source = tmp_path / "source"
    write_original(raw, spec, source / "raw_nmm" / f"a{REGION}", 0, REGION)
    reference = reference_iteration(downsample_remap(raw, SMALL), REGION, fwd)
    assert reference.spike_time == []
    run(octave, REGION, source, leadfield, iterations=[0])
    marker = read_marker(source, REGION, 0)
    assert marker["num_spike"].item() == 0 and marker["spike_time"].size == 0


def test_real_leadfield_remapped_region(octave, tmp_path):
    """Real 75×994 lead field, 998 TVB columns: fs region 7 is TVB node 994."""
    leadfield = Path(__file__).resolve().parents[2] / "data" / "deepsif-anatomy" / "leadfield_75_20k.mat"
    fwd = scipy.io.loadmat(leadfield)["fwd"]
    spec = RawSpec(
        2, 6000, {994: [onset_for_peak(t) for t in (600, 1700)], 7: [onset_for_peak(1100)]}, seed=5
    )
    raw = make_raw(spec, REAL.n_tvb)
    source = tmp_path / "source"
    write_original(raw, spec, source / "raw_nmm" / "a7", 0, 7)
    reference = reference_iteration(downsample_remap(raw, REAL), 7, fwd)
    assert reference.spike_time  # TVB column 7 (rLOF) is not fs column 7: its spike is ignored
    opts = {**REAL.clip_options(), "iterations": [0], "expected_segments": 2}
    octave.call("process_region_clips", 7, str(source), str(leadfield), "spikes", opts, nout=1)
    marker = read_marker(source, 7, 0)
    assert marker["spike_time"].ravel().tolist() == reference.spike_time
    for k, clip in enumerate(reference.clips, start=1):
        data = read_clip(source, 7, k)
        assert data.shape == (500, 994) and data.dtype == np.float32
        np.testing.assert_allclose(data, clip, rtol=1e-5, atol=1e-4)


def test_bad_inputs_give_clear_errors(octave, small_case, tmp_path):
    root, leadfield, _raws, _refs = small_case
    source = tmp_path / "source"
    shutil.copytree(root / "source", source)
    with pytest.raises(OctaveError, match="no raw data for iteration 0 of region 3"):
        run(octave, 3, source, leadfield)
    with pytest.raises(OctaveError, match="out of range"):
        run(octave, SMALL.n_fs, source, leadfield)
    wrong = save_leadfield(tmp_path / "wrong.mat", np.ones((75, SMALL.n_fs + 1)))
    with pytest.raises(OctaveError, match=r"expected n_electrodes x 12"):
        run(octave, REGION, source, wrong)
    with pytest.raises(OctaveError, match="does not exist"):
        run(octave, REGION, source, tmp_path / "missing.mat")
    (source / "raw_nmm" / f"a{REGION}" / f"mean_iter_2_a_iter_{REGION}_1.mat").unlink()
    with pytest.raises(OctaveError, match="expected 2"):
        run(octave, REGION, source, leadfield, expected_segments=2)
    # Iterations 0 and 1 completed before the error; iteration 2 left no marker and no clips of its own.
    assert not (source / "nmm_spikes" / "clip_info" / "iter2").exists() or not list(
        (source / "nmm_spikes" / "clip_info" / "iter2").iterdir()
    )


def test_matlab_backend_runs_same_code(small_case, tmp_path, fake_matlab):
    """The MATLAB backend's ``-batch`` command, run by the fake ``matlab`` (Octave), gives the same clips."""
    root, leadfield, _raws, references = small_case
    source = tmp_path / "source"
    shutil.copytree(root / "source", source)
    matlab = OctaveResource(backend="matlab")
    opts = {**SMALL.clip_options(), "verbose": False}
    opts = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in opts.items()}
    command = matlab.matlab_command(
        "process_region_clips", [REGION, str(source), str(leadfield), "spikes", opts]
    )
    assert command[:3] == [str(fake_matlab), "-singleCompThread", "-batch"]
    matlab.call("process_region_clips", REGION, str(source), str(leadfield), "spikes", opts)
    assert read_marker(source, REGION, 2)["num_spike"].item() == sum(len(r.spike_time) for r in references)
    np.testing.assert_allclose(read_clip(source, REGION, 1), references[0].clips[0], rtol=1e-5, atol=1e-4)
    with pytest.raises(OctaveError, match="exit status 1"):
        matlab.call("process_region_clips", SMALL.n_fs, str(source), str(leadfield), "spikes", opts)


def test_segment_order_numeric_by_default_lexicographic_on_request(octave, tmp_path):
    """12 segments: numeric order follows time; the original's order (0, 1, 10, 11, 2, …) scrambles it."""
    fwd = small_leadfield(SMALL)
    leadfield = save_leadfield(tmp_path / "lf.mat", fwd)
    src = SMALL.tvb_column(REGION)
    spec = RawSpec(12, 2000, {src: [onset_for_peak(t) for t in (700, 2200, 4700)]}, seed=21)
    raw = make_raw(spec, SMALL.n_tvb)
    source = tmp_path / "source"
    write_original(raw, spec, source / "raw_nmm" / f"a{REGION}", 0, REGION)
    order = sorted(range(12), key=str)  # the segments in lexicographic file-name order
    scrambled = np.concatenate([raw[k * 2000 : (k + 1) * 2000] for k in order])
    numeric = reference_iteration(downsample_remap(raw, SMALL), REGION, fwd)
    lexicographic = reference_iteration(downsample_remap(scrambled, SMALL), REGION, fwd)
    assert numeric.spike_time != lexicographic.spike_time
    for faithful, expected in ((False, numeric), (True, lexicographic)):
        shutil.rmtree(source / "nmm_spikes", ignore_errors=True)
        run(octave, REGION, source, leadfield, iterations=[0], lexicographic_segment_order=faithful)
        assert read_marker(source, REGION, 0)["spike_time"].ravel().tolist() == expected.spike_time


# ---- folders shared by regions extracted at the same moment -----------------------------------------------------
# A stand-in for Octave's mkdir that loses every race: another process creates the folder (with its parents) between
# mkdir's existence check and its system call, so the call reports the system call's "File exists" although the
# folder is there. A folder that already existed before the call is success, as in Octave.
RACING_MKDIR = r"""function varargout = mkdir(varargin)
if nargin == 2
    folder = fullfile(varargin{1}, varargin{2});
else
    folder = varargin{1};
end
log = fopen(getenv('RACING_MKDIR_LOG'), 'a');
fprintf(log, '%s\n', folder);
fclose(log);
if isfolder(folder)
    result = {true, 'directory exists', 'mkdir'};
else
    [rc, out] = system(sprintf('mkdir -p ''%s''', folder));
    if rc ~= 0
        error('racing mkdir: %s', out);
    end
    if nargout == 0
        error('mkdir: operation failed: File exists');
    end
    result = {false, 'File exists', 'mkdir'};
end
varargout = result(1:max(nargout, 1));
end
"""


def octave_cli(code: str, *path: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """``code`` in a fresh octave-cli whose path has matlab/ and then ``path`` in front of it."""
    prefix = "".join(f"addpath({matlab_literal(str(p))}); " for p in (MATLAB_DIR, *path))
    return subprocess.run(
        ["octave-cli", "--no-gui", "--norc", "--eval", prefix + code],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def small_opts() -> dict:
    opts = {**SMALL.clip_options(), "verbose": False}
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in opts.items()}


def test_folder_made_by_another_process_meanwhile_is_success(small_case, tmp_path, monkeypatch):
    """Every mkdir of a fresh extraction loses the race: the clips and markers are written all the same.

    Without ensure_dir.m, process_region_clips failed here with ``cannot create folder …/nmm_spikes/a2: File
    exists`` — what two regions extracted at once into a fresh source folder could hit."""
    root, leadfield, _raws, references = small_case
    source = tmp_path / "source"
    shutil.copytree(root / "source", source)
    shim = tmp_path / "racing-mkdir"
    shim.mkdir()
    (shim / "mkdir.m").write_text(RACING_MKDIR)
    log = tmp_path / "mkdir-calls.txt"
    monkeypatch.setenv("RACING_MKDIR_LOG", str(log))
    call = (
        f"process_region_clips({REGION}, {matlab_literal(str(source))}, {matlab_literal(str(leadfield))}, "
        f"'spikes', {matlab_literal(small_opts())}); disp('extraction finished')"
    )
    result = octave_cli(call, shim)
    assert result.returncode == 0 and "extraction finished" in result.stdout, result.stderr
    # Every folder of the extraction went through a lost race.
    out = source / "nmm_spikes"
    made = {Path(line) for line in log.read_text().splitlines()}
    assert {out, out / f"a{REGION}", out / "clip_info", out / "clip_windows"} <= made
    assert {out / "clip_info" / f"iter{m}" for m in range(3)} <= made
    total = sum(len(r.spike_time) for r in references)
    assert read_marker(source, REGION, 2)["num_spike"].item() == total
    assert len(list((out / f"a{REGION}").iterdir())) == total
    assert read_window_cache(source, REGION)["n_clips"].item() == total
    np.testing.assert_allclose(read_clip(source, REGION, 1), references[0].clips[0], rtol=1e-5, atol=1e-4)


def test_ensure_dir_error_names_the_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = octave_cli(f"ensure_dir({matlab_literal(str(blocker / 'sub' / 'dir'))})")
    assert result.returncode != 0
    assert f"cannot create folder {blocker}: " in result.stderr  # the first level it could not create


STRESS = r"""fclose(fopen(fullfile(root, sprintf('ready_%d', me)), 'w'));
while ~isfile(fullfile(root, 'go'))
    pause(0.001);
end
n_made = 0;
failures = {};
for k = 1:n
    for leaf = {'a0', 'a1', fullfile('clip_info', 'iter0')}
        try
            ensure_dir(fullfile(root, sprintf('%d', k), 'nmm_spikes', leaf{1}));
            n_made = n_made + 1;
        catch err
            failures{end + 1} = err.message;
        end
    end
end
printf('made %d failed %d\n', n_made, numel(failures));
printf('%s\n', failures{:});
"""


def test_concurrent_processes_create_the_same_folders(tmp_path):
    """Two Octave processes, released at the same moment, create the same nested folders 3 × 1000 times each.

    The same harness with the former check-then-mkdir (``if ~isfolder(f), mkdir(f)``) in front of the path lost
    the race in about a third of the calls on the 2-core development machine ("cannot create folder …: File
    exists", 923 and 1061 of 3000 in two runs)."""
    root = tmp_path / "root"
    root.mkdir()
    n = 1000
    procs = [
        subprocess.Popen(
            [
                "octave-cli",
                "--no-gui",
                "--norc",
                "--eval",
                f"addpath({matlab_literal(str(MATLAB_DIR))}); "
                f"root = {matlab_literal(str(root))}; me = {me}; n = {n};\n{STRESS}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for me in (1, 2)
    ]
    try:
        deadline = time.monotonic() + 120
        while not all((root / f"ready_{me}").exists() for me in (1, 2)):  # both past start-up
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "no start"
            time.sleep(0.01)
        (root / "go").touch()
        outputs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for (out, err), p in zip(outputs, procs, strict=True):
        assert p.returncode == 0, err
        assert out.startswith(f"made {3 * n} failed 0"), out
    assert all((root / str(k) / "nmm_spikes" / "clip_info" / "iter0").is_dir() for k in range(1, n + 1))


# ---- the same output as the former code ---------------------------------------------------------------------------
FORMER_REV = "6f7d639"  # the last commit before the extraction speed-up
FORMER_FILES = ("process_region_clips.m", "write_clip_windows.m", "clip_window.m", "save_atomic.m")


@pytest.fixture(scope="module")
def former_code(tmp_path_factory) -> Path:
    """The .m files of ``FORMER_REV`` (git show), to be put in front of matlab/ on the Octave path."""
    folder = tmp_path_factory.mktemp("former-matlab")
    for name in FORMER_FILES:
        shown = subprocess.run(
            ["git", "-C", str(MATLAB_DIR.parent), "show", f"{FORMER_REV}:matlab/{name}"], capture_output=True
        )
        if shown.returncode != 0:
            pytest.skip(f"git show {FORMER_REV}:matlab/{name} is unavailable here")
        (folder / name).write_bytes(shown.stdout)
    return folder


def former_cases(root: Path, small_source: Path) -> dict[str, tuple[Path, dict]]:
    """Source folders and options that exercise both peak searches, NaN samples and two spikes in one block."""
    src = SMALL.tvb_column(REGION)
    cases = {}
    for name, options in (
        ("default", {}),
        ("low-threshold", {"threshold_mv": 0.12}),  # many candidate samples and peaks, most spikes fall to rule 2
        ("non-positive-threshold", {"threshold_mv": -0.05}),  # the dense peak test
    ):
        cases[name] = (root / name, options)
        shutil.copytree(small_source, root / name)
    one_iteration = {
        # two source spikes in the block 1001..1500 (identical clips) and one more
        "same-block": RawSpec(1, 12_000, {src: [onset_for_peak(t) for t in (1100, 1300, 2100)]}, seed=31),
        "nan-samples": RawSpec(1, 12_000, {src: [onset_for_peak(1700)], 4: [onset_for_peak(1400)]}, seed=32),
    }
    for name, spec in one_iteration.items():
        nmm = downsample_remap(make_raw(spec, SMALL.n_tvb), SMALL)
        if name == "nan-samples":
            # A NaN at the peak of channel 4 (1-based 1400) leaves no peak there: the source spike is not rejected
            # by rule 2. A NaN also makes every column mean with it, hence alpha and the rescaled spike, NaN.
            nmm[1399, 4] = np.nan
        write_compact(nmm, root / name / "raw_nmm" / f"a{REGION}", 0, REGION)
        cases[name] = (root / name, {"iterations": [0]})
    return cases


def mat_variables(path: Path) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}


def test_identical_to_former_code(small_case, former_code, tmp_path):
    """Clips, markers and window caches of the former code (FORMER_REV) and the current one: every variable of
    every file bitwise equal, for both peak searches, NaN samples and identical clips of one block."""
    root, leadfield, _raws, _references = small_case
    outputs = {}
    for label, path in (("former", (former_code,)), ("current", ())):
        cases = former_cases(tmp_path / label, root / "source")
        calls = "".join(
            f"process_region_clips({REGION}, {matlab_literal(str(folder))}, {matlab_literal(str(leadfield))}, "
            f"'spikes', {matlab_literal({**small_opts(), **options})}); "
            for folder, options in cases.values()
        )
        result = octave_cli(calls + "disp('all extracted')", *path)
        assert result.returncode == 0 and "all extracted" in result.stdout, result.stderr
        outputs[label] = {name: folder / "nmm_spikes" for name, (folder, _opts) in cases.items()}
    n_clips = {}
    for name, former in outputs["former"].items():
        current = outputs["current"][name]
        files = sorted(p.relative_to(former) for p in former.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(current) for p in current.rglob("*") if p.is_file()), name
        for rel in files:
            a, b = mat_variables(former / rel), mat_variables(current / rel)
            assert a.keys() == b.keys(), (name, rel)
            for var in a:
                assert a[var].dtype == b[var].dtype and a[var].shape == b[var].shape, (name, rel, var)
                assert a[var].tobytes() == b[var].tobytes(), (name, rel, var)
        n_clips[name] = len(list((former / f"a{REGION}").iterdir()))
    assert n_clips["default"] == 8 and n_clips["same-block"] == 3 and n_clips["nan-samples"] == 1
    assert n_clips["low-threshold"] < n_clips["default"]
    same_block = outputs["current"]["same-block"] / f"a{REGION}"
    np.testing.assert_array_equal(read_clip(same_block.parents[1], REGION, 1), read_clip(same_block.parents[1], REGION, 2))
    nan_clip = read_clip(outputs["current"]["nan-samples"].parent, REGION, 1)
    assert np.isnan(nan_clip).any()  # NaN samples reach the clip (and alpha): the same NaNs as before


def test_compact_real_anatomy_two_spikes_in_one_block(octave, tmp_path):
    """The production path (compact raw, 994 columns) against the NumPy reference: two spikes in one block give two
    identical clips and the window cache covers both."""
    leadfield = Path(__file__).resolve().parents[2] / "data" / "deepsif-anatomy" / "leadfield_75_20k.mat"
    fwd = scipy.io.loadmat(leadfield)["fwd"]
    region = 7  # TVB node 994
    spec = RawSpec(
        1, 16_000, {994: [onset_for_peak(t) for t in (1100, 1300, 2100, 2600)], 40: [onset_for_peak(2800)]}, seed=9
    )
    nmm = downsample_remap(make_raw(spec, REAL.n_tvb), REAL)
    source = tmp_path / "source"
    write_compact(nmm, source / "raw_nmm" / f"a{region}", 0, region)
    reference = reference_iteration(nmm, region, fwd)
    assert reference.spike_time == [1100, 1300, 2100]  # 2600 falls to rule 2 (channel 40 at 2800)
    opts = {**REAL.clip_options(), "iterations": [0], "verbose": False}
    octave.call("process_region_clips", region, str(source), str(leadfield), "spikes", opts, nout=1)
    assert read_marker(source, region, 0)["spike_time"].ravel().tolist() == reference.spike_time
    clips = [read_clip(source, region, k) for k in (1, 2, 3)]
    for data, clip in zip(clips, reference.clips, strict=True):
        np.testing.assert_allclose(data, clip, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(clips[0], clips[1])
    cache = read_window_cache(source, region)
    assert cache["n_clips"].item() == 3
    for k, clip in enumerate(clips):
        start, length = int(cache["window_start"][0, k]), int(cache["window_length"][0, k])
        np.testing.assert_array_equal(cache["window_rows"][:length, :, k], clip[start - 1 : start - 1 + length])
        np.testing.assert_allclose(cache["clip_mean"][k], clip.astype(np.float64).mean(axis=0), rtol=1e-12)


def test_clips_are_uncompressed_unless_compression_is_asked_for(octave, small_case, tmp_path):
    """Default clips are MAT -v6 (first element miMATRIX, tag 14), compress_clips gives -v7 (miCOMPRESSED, tag 15);
    every clip's values are the same either way."""
    root, leadfield, _raws, _references = small_case
    clips = {}
    for compress in (False, True):
        source = tmp_path / f"compress_{compress}" / "source"
        shutil.copytree(root / "source", source)
        run(octave, REGION, source, leadfield, compress_clips=compress)
        files = sorted((source / "nmm_spikes" / f"a{REGION}").iterdir(), key=lambda p: p.name)
        assert files
        for path in files:
            tag = np.frombuffer(path.read_bytes()[128:132], "<u4").item()
            assert tag == (15 if compress else 14), (path, tag)
        clips[compress] = {p.name: scipy.io.loadmat(p)["data"] for p in files}
    assert clips[False].keys() == clips[True].keys()
    for name, data in clips[False].items():
        assert data.dtype == clips[True][name].dtype and data.tobytes() == clips[True][name].tobytes(), name


@pytest.mark.parametrize("fmt", ["-v7", "-v6"])
def test_save_atomic_structure_check_rejects_truncated_files(octave, tmp_path, fmt):
    """The cheap 'structure' check (clips) publishes a complete file and never a truncated one (what Octave's save
    leaves on a full disk): truncated bytes are offered through save_atomic's copy_of."""
    data = np.random.default_rng(4).normal(size=(500, 994)).astype(np.float32)
    good = tmp_path / "good.mat"
    octave.call("save_atomic", str(good), {"data": data}, fmt, "structure")
    np.testing.assert_array_equal(scipy.io.loadmat(good)["data"], data)
    content = good.read_bytes()
    copy = tmp_path / "copy.mat"
    octave.call("save_atomic", str(copy), {"data": data}, fmt, "structure", str(good))
    assert copy.read_bytes() == content
    for cut in (0, 100, 128, 136, 140, 4096, len(content) // 2, len(content) - 4, len(content) - 1):
        truncated = tmp_path / f"truncated_{cut}.bin"
        truncated.write_bytes(content[:cut])
        target = tmp_path / f"target_{cut}.mat"
        with pytest.raises(OctaveError, match=f"could not write {target}"):
            octave.call("save_atomic", str(target), {"data": data}, fmt, "structure", str(truncated))
        assert not target.exists()
    assert not list(tmp_path.glob(".partial_*"))
