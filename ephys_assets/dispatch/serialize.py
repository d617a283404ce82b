"""Recording → JSON-ready dict, with paths relative to the LOGICAL data root (symlinks not resolved, D13)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def _relative_posix(value: str, data_root: Path) -> str:
    # abspath normalises ".." without following symlinks, unlike Path.resolve() used by SpikeInterface.
    return Path(os.path.relpath(os.path.abspath(value), os.path.abspath(data_root))).as_posix()


def _rewrite_paths(node: Any, data_root: Path) -> Any:
    if isinstance(node, dict):
        if "class" in node and "kwargs" in node:
            node["relative_paths"] = False
            for key, value in list(node["kwargs"].items()):
                if "path" in key and isinstance(value, str | Path) and Path(value).exists():
                    node["kwargs"][key] = _relative_posix(str(value), data_root)
                else:
                    node["kwargs"][key] = _rewrite_paths(value, data_root)
            return node
        return {key: _rewrite_paths(value, data_root) for key, value in node.items()}
    if isinstance(node, list):
        return [_rewrite_paths(item, data_root) for item in node]
    return node


def recording_to_dict(recording: Any, data_root: Path, include_annotations: bool = False) -> dict[str, Any]:
    """``to_dict(recursive=True)`` with existing ``*path*`` kwargs made relative to ``data_root``.

    Only the top level says ``relative_paths: true`` (as in the original); load with
    ``spikeinterface.load(d, base_folder=<data folder>)``. The result is plain JSON types (via ``SIJsonEncoder``).
    """
    from spikeinterface.core.core_tools import SIJsonEncoder

    raw = recording.to_dict(include_annotations=include_annotations, include_properties=True, recursive=True)
    plain = json.loads(json.dumps(raw, cls=SIJsonEncoder))
    rewritten = _rewrite_paths(plain, Path(data_root))
    rewritten["relative_paths"] = True
    return rewritten
