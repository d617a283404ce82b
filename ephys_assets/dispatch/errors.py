"""The one exception type of the dispatcher: bad input, naming the offending path or value."""

from __future__ import annotations

import os


class DispatchError(Exception):
    """Input the dispatcher cannot use. ``path`` names the file, folder or parameter at fault."""

    def __init__(self, message: str, path: str | os.PathLike | None = None) -> None:
        self.path = None if path is None else str(path)
        super().__init__(message if path is None else f"{message} [{path}]")
