"""Write a file so that readers see the old version or the whole new one, never a part.

The text goes to a temporary file in the same directory (same filesystem), is flushed to
disk, and only then renamed over the target with ``os.replace`` (atomic on POSIX and Windows).
If producing the text fails halfway, the temporary file is removed and the target is untouched.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

__all__ = ["write_atomic"]


def write_atomic(path: Path, chunks: Iterable[str]) -> None:
    """Write the concatenated ``chunks`` (e.g. a streamed template) to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            for chunk in chunks:
                file.write(chunk)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide the report from a web server
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
