"""The derived region distance matrix (stand-in for the unshipped dis_matrix_fs_20k.mat)."""

from __future__ import annotations

import shutil

import numpy as np
import scipy.io

from deepsif_assets.synthetic.anatomy import DIS_MATRIX_FILE, ensure_dis_matrix


def test_dis_matrix_matches_independent_centroids(tmp_path, anatomy_dir):
    source = ensure_dis_matrix(anatomy_dir, tmp_path)
    assert source.derived and source.path == tmp_path / DIS_MATRIX_FILE
    assert "stand-in" in source.description
    dis = scipy.io.loadmat(source.path)["raw_dis_matrix"]

    pos = scipy.io.loadmat(anatomy_dir / "fs_cortex_20k.mat")["pos"].astype(float)
    rm = scipy.io.loadmat(anatomy_dir / "fs_cortex_20k_region_mapping.mat")["rm"].ravel().astype(int)
    expected = np.empty((994, 994))
    centroids = [pos[rm == r].mean(axis=0) for r in range(994)]
    for i in range(994):
        expected[i] = [np.linalg.norm(centroids[i] - c) for c in centroids]
    np.testing.assert_allclose(dis, expected, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(dis, dis.T)
    assert np.all(np.diag(dis) == 0)
    assert abs(dis.max() - 172.7) < 0.05
    assert abs(np.median(dis[np.triu_indices(994, 1)]) - 81.7) < 0.05


def test_shipped_dis_matrix_is_preferred_and_derived_one_reused(tmp_path, anatomy_dir):
    first = ensure_dis_matrix(anatomy_dir, tmp_path / "source")
    stamp = first.path.stat().st_mtime_ns
    assert ensure_dis_matrix(anatomy_dir, tmp_path / "source").path.stat().st_mtime_ns == stamp

    shipped = tmp_path / "anatomy"
    shutil.copytree(anatomy_dir, shipped, ignore=shutil.ignore_patterns("*.zip"))
    scipy.io.savemat(shipped / DIS_MATRIX_FILE, {"raw_dis_matrix": np.ones((994, 994))})
    found = ensure_dis_matrix(shipped, tmp_path / "other")
    assert not found.derived and found.path == shipped / DIS_MATRIX_FILE
    assert not (tmp_path / "other" / DIS_MATRIX_FILE).exists()
