"""Atomic text files: written next to their destination, flushed to disk, renamed into place."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_text_atomic(path: str | os.PathLike[str], text: str, *, newline: str | None = None) -> Path:
    """Write ``text`` to ``path`` so a reader sees the old file or the whole new one, never a part.

    Parent folders are created; on any failure the temporary file is removed and the error raised.
    ``newline`` is passed to :func:`open` (``""`` keeps ``\\r\\n`` as written, as CSV needs).
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
