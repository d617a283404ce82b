"""numba's on-disk cache, made safe for functions that call jitted code from other files.

numba validates a cached function against its own source file only (modification time and size), yet the cached
machine code also contains every jitted function it calls or inlines from other files. Edit ``legacy_rng.py``
alone and ``lanes.py``'s cached kernel keeps running the old noise replay, with no error: a silent mix of two
engines in one dataset. (numba's pull requests that extend invalidation to other files were never merged.)

:func:`drop_stale_caches` keys a package's cache on a digest of all its sources: when any of them changed since
the cache files were written, every cache file of the package is removed before anything loads from it.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from neuro_core.files import write_text_atomic
from neuro_core.locks import exclusive_lock

STAMP_NAME = "numba-sources.sha256"


def sources_digest(package_dir: Path) -> str:
    """SHA-256 over the names and contents of the package's ``.py`` files."""
    digest = hashlib.sha256()
    for path in sorted(package_dir.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _cache_dirs(package: str) -> set[Path]:
    """Where numba keeps the cache files of the package's imported modules (its own choice of folder:
    ``__pycache__`` beside the sources, or a user-wide folder when that is not writable)."""
    from numba.core.caching import FunctionCache
    from numba.core.registry import CPUDispatcher

    folders = set()
    for name, module in list(sys.modules.items()):
        if module is None or not (name == package or name.startswith(package + ".")):
            continue
        for value in vars(module).values():
            cache = getattr(value, "_cache", None) if isinstance(value, CPUDispatcher) else None
            if isinstance(cache, FunctionCache):
                folders.add(Path(cache._cache_path))
    return folders


def drop_stale_caches(package: str) -> list[Path]:
    """Remove the numba cache files of ``package`` (call it once its modules are imported, before any jitted
    function runs) if they were written for other sources; returns the removed files.

    Serialised by a lock beside the cache, so that processes starting together do not remove what another
    has just written for the same sources."""
    package_dir = Path(sys.modules[package].__file__).parent
    digest = sources_digest(package_dir)
    removed: list[Path] = []
    for folder in sorted(_cache_dirs(package)):
        stamp = folder / STAMP_NAME
        if stamp.is_file() and stamp.read_text().strip() == digest:
            continue
        with exclusive_lock(folder / (STAMP_NAME + ".lock"), "checking numba's cache", wait=True):
            if stamp.is_file() and stamp.read_text().strip() == digest:
                continue
            for path in sorted([*folder.glob("*.nbi"), *folder.glob("*.nbc")]):
                path.unlink(missing_ok=True)
                removed.append(path)
            write_text_atomic(stamp, digest + "\n")
    return removed
