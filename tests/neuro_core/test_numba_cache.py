"""numba's cache across files: a kernel that calls jitted code from another file of its package is recompiled
when only that other file changes (numba itself checks the kernel's own file only)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from neuro_core.numba_cache import STAMP_NAME, sources_digest

REPO = Path(__file__).resolve().parents[2]


def _package(root: Path, guarded: bool) -> None:
    package = root / "kernels"
    package.mkdir()
    init = "from . import user\n"
    if guarded:
        init += "from neuro_core.numba_cache import drop_stale_caches\ndrop_stale_caches(__name__)\n"
    (package / "__init__.py").write_text(init)
    (package / "step.py").write_text(_step_source(1))
    (package / "user.py").write_text(
        textwrap.dedent(
            """
            from numba import njit

            from .step import step


            @njit(cache=True)
            def advance(x):
                return step(x) * 10
            """
        )
    )


def _step_source(increment: int) -> str:
    return f"from numba import njit\n\n\n@njit(cache=True)\ndef step(x):\n    return x + {increment}\n"


def _run(root: Path) -> dict:
    script = (
        "import json\nfrom kernels.user import advance\n"
        "print(json.dumps({'value': advance(1), 'cache_hits': sum(advance.stats.cache_hits.values())}))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(REPO)]), "NUMBA_CACHE_DIR": ""}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _edit_step(root: Path) -> None:
    path = root / "kernels" / "step.py"
    path.write_text(_step_source(2))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a later mtime, even on a coarse clock


def test_a_change_in_another_file_of_the_package_recompiles_the_cached_kernel(tmp_path):
    _package(tmp_path, guarded=True)
    assert _run(tmp_path) == {"value": 20, "cache_hits": 0}  # compiled and cached
    assert _run(tmp_path) == {"value": 20, "cache_hits": 1}  # unchanged sources: the cache is used
    _edit_step(tmp_path)
    assert _run(tmp_path)["value"] == 30  # not the cached 20
    assert _run(tmp_path) == {"value": 30, "cache_hits": 1}


def test_numba_alone_serves_the_stale_kernel(tmp_path):
    """What the guard is for: without it the edited step is ignored (numba 0.68)."""
    _package(tmp_path, guarded=False)
    assert _run(tmp_path)["value"] == 20
    _edit_step(tmp_path)
    assert _run(tmp_path) == {"value": 20, "cache_hits": 1}


def test_the_simulation_package_is_guarded():
    from deepsif_assets import simulation
    from deepsif_assets.simulation import lanes

    stamp = Path(lanes._run._cache._cache_path) / STAMP_NAME
    assert stamp.read_text().strip() == sources_digest(Path(simulation.__file__).parent)
