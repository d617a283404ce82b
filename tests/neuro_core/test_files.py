import json

import pytest

from neuro_core.files import PathEscapeError, atomic_path, confined_path, write_json_atomic


def test_confined_path_refuses_escapes(tmp_path):
    assert confined_path(tmp_path, "a", "b.json") == tmp_path / "a" / "b.json"
    for parts in (("..", "x"), ("/etc/passwd",), ("a", "../../x"), ("",)):
        with pytest.raises(PathEscapeError):
            confined_path(tmp_path, *parts)


def test_confined_path_refuses_symlink_out(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(PathEscapeError):
        confined_path(root, "link", "f")


def test_atomic_write_keeps_old_content_on_failure(tmp_path):
    target = tmp_path / "job.json"
    write_json_atomic(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash while writing")
    assert json.loads(target.read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.json"]
