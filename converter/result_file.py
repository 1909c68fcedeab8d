"""A result written to a path complete or not at all (`xmlconv convert -o`, the client's
download): into a temporary file beside it, renamed onto it once complete, so that a failure
leaves nothing that looks like a result. The file gets the mode a new file gets (0666 minus the
umask), not mkstemp's 0600. A symbolic link's target is replaced, not the link; an output that
is not a regular file (/dev/null, a FIFO, a terminal) is written to as it is: renaming a file
onto it would replace the device itself (as root, `-o /dev/null` once did)."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def _umask() -> int:
    """The process's umask. Reading it means setting it: set 0, put it back at once."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _is_special(path: Path) -> bool:
    try:
        return not stat.S_ISREG(path.stat().st_mode)
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def result_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary stream whose bytes become `path` when the block ends without an error.
    OSErrors of the temporary file's creation name `path`, not the temporary file."""
    if _is_special(Path(path)):  # asked of the path as given: /dev/stdout resolves to a
        with open(path, "wb") as out:  # /proc/<pid>/fd/pipe:[…] that no one can open
            yield out
        return
    target = Path(path).resolve()
    try:
        made = tempfile.NamedTemporaryFile(  # noqa: SIM115 (entered just below)
            dir=target.parent, prefix=".xmlconv-", suffix=".part", delete=False)
    except OSError as exc:
        exc.filename = os.fspath(path)
        raise
    try:
        with made as tmp:
            yield tmp
            os.fchmod(tmp.fileno(), 0o666 & ~_umask())
        os.replace(made.name, target)
    except BaseException:
        Path(made.name).unlink(missing_ok=True)
        raise
