"""The MAT-file writer: what scipy.io.savemat writes (but the header text), read back by SciPy and real Octave."""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import pytest
import scipy.io

from deepsif_assets.simulation.matfile import create_mat, write_column_run, write_mat


def variables() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    data = rng.normal(size=(301, 13)).astype(np.float32)
    return {
        "all_data": np.asfortranarray(data),  # written from its own buffer
        "all_time": np.arange(301, dtype=np.float64).reshape(-1, 1) * 2.0,
        "data": data[:, :5],  # neither C- nor F-contiguous: copied
        "A": np.linspace(0.0, 1.0, 7),  # 1-D: a row, as savemat(oned_as="row")
    }


def test_the_bytes_after_the_header_are_those_scipy_writes():
    ours, theirs = io.BytesIO(), io.BytesIO()
    write_mat(ours, variables())
    scipy.io.savemat(theirs, variables(), format="5", oned_as="row", do_compression=False)
    assert ours.getvalue()[116:] == theirs.getvalue()[116:]  # the 116-byte header text is free-form


def test_scipy_reads_back_every_variable_with_its_class_and_shape(tmp_path):
    path = tmp_path / "v.mat"
    with open(path, "wb") as f:
        write_mat(f, variables())
    loaded = scipy.io.loadmat(path)
    for name, value in variables().items():
        expected = value.reshape(1, -1) if value.ndim == 1 else value
        assert loaded[name].dtype == expected.dtype
        assert np.array_equal(loaded[name], expected)


@pytest.mark.skipif(shutil.which("octave-cli") is None, reason="GNU Octave (octave-cli) is not installed")
def test_octave_loads_it(tmp_path):
    path = tmp_path / "v.mat"
    with open(path, "wb") as f:
        write_mat(f, variables())
    code = (
        f"s = load('{path}'); printf('%s %d %d %.9g\\n', class(s.all_data), size(s.all_data), "
        "s.all_data(300, 12)); printf('%s %d %d %.17g\\n', class(s.all_time), size(s.all_time), sum(s.all_time));"
    )
    out = subprocess.run(["octave-cli", "--no-gui", "--norc", "--eval", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    data = variables()["all_data"]
    assert out.stdout.split("\n")[:2] == [
        f"single 301 13 {float(data[299, 11]):.9g}",
        f"double 301 1 {variables()['all_time'].sum():.17g}",
    ]


def test_what_cannot_be_written_is_refused_before_anything_is_written():
    stream = io.BytesIO()
    with pytest.raises(ValueError, match="x: expected a 1-D or 2-D float32/float64 array"):
        write_mat(stream, {"x": np.zeros((2, 2), dtype=np.int32)})


def test_a_created_file_written_in_column_runs_is_what_write_mat_writes(tmp_path):
    arrays = {name: value for name, value in variables().items() if value.ndim == 2}
    path = tmp_path / "filled.mat"
    with open(path, "w+b") as f:
        offsets = create_mat(f, {name: (value.shape, value.dtype) for name, value in arrays.items()})
        for name, value in arrays.items():
            n_rows, n_columns = value.shape
            for column in reversed(range(n_columns)):  # any order, runs of uneven length
                for first in range(0, n_rows, 97):
                    run = np.ascontiguousarray(value[first : first + 97, column])
                    write_column_run(f.fileno(), offsets[name], n_rows, column, first, run)
    expected = io.BytesIO()
    write_mat(expected, arrays)
    assert path.read_bytes() == expected.getvalue()


def test_create_mat_refuses_bad_variables_before_writing(tmp_path):
    path = tmp_path / "never.mat"
    with open(path, "w+b") as f, pytest.raises(ValueError, match="bad: expected a 1-D or 2-D float32/float64"):
        create_mat(f, {"ok": ((3, 2), np.float32), "bad": ((3, 2), np.int16)})
    assert path.stat().st_size == 0


def test_a_column_run_outside_its_variable_is_refused(tmp_path):
    with open(tmp_path / "v.mat", "w+b") as f:
        offsets = create_mat(f, {"a": ((10, 2), np.float32), "b": ((3, 1), np.float64)})
        size = f.seek(0, 2)
        for column, first in ((0, 8), (-1, 0), (1, -1)):
            with pytest.raises(ValueError, match="outside the variable's 10 rows"):
                write_column_run(f.fileno(), offsets["a"], 10, column, first, np.ones(3, np.float32))
        assert f.seek(0, 2) == size
    assert scipy.io.loadmat(tmp_path / "v.mat")["b"].tolist() == [[0.0], [0.0], [0.0]]  # b untouched
