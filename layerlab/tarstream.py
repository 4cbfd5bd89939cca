"""Layer tar entries, read as a stream: paths normalised, whiteouts recognised, unsafe
paths refused. Nothing is extracted to disk."""

from __future__ import annotations

import posixpath
import tarfile
from typing import BinaryIO, Iterator, NamedTuple

from .errors import CorruptArchiveError, UnsafePathError

__all__ = ["TarEntry", "iter_tar", "iter_tar_members", "normalize_path", "WHITEOUT_PREFIX", "OPAQUE_MARKER"]

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"

_TYPES = {
    tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.CONTTYPE: "file",
    tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink",
    tarfile.CHRTYPE: "char", tarfile.BLKTYPE: "block", tarfile.FIFOTYPE: "fifo",
}


def normalize_path(name: str, what: str) -> str:
    """A tar member name as it appears in the image: no ``./`` or trailing ``/``.

    Raises :class:`UnsafePathError` for absolute paths and ``..`` components.
    """
    if name.startswith("/"):
        raise UnsafePathError(f"{what}: absolute path {name!r} in layer")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePathError(f"{what}: path {name!r} escapes the layer root")
    return "/".join(parts)


class TarEntry(NamedTuple):
    """One entry of a layer tar (a named tuple: the header scans of whole images make
    hundreds of thousands of them).

    ``path`` has no leading ``./`` or ``/``. For a whiteout ``dir/.wh.name``, ``whiteout``
    is the hidden path ``dir/name``; for an opaque marker ``dir/.wh..wh..opq``,
    ``opaque`` is True and ``whiteout`` is ``dir`` (whose lower contents it hides).
    ``offset`` is where a file's data starts in the uncompressed tar, when the reader
    knows it (:func:`layerlab.analysis.scan.scan_layer`), else ``-1``.
    """

    path: str
    type: str
    size: int
    mode: int
    uid: int
    gid: int
    mtime: float
    linkname: str = ""
    whiteout: str | None = None
    opaque: bool = False
    offset: int = -1

    @property
    def is_whiteout(self) -> bool:
        return self.whiteout is not None

    @property
    def is_file(self) -> bool:
        return self.type == "file"

    @property
    def is_dir(self) -> bool:
        return self.type == "dir"


def _entry(info: tarfile.TarInfo, what: str) -> TarEntry:
    path = normalize_path(info.name, what)
    if not path:
        return TarEntry(path="", type="dir", size=0, mode=info.mode, uid=info.uid,
                        gid=info.gid, mtime=info.mtime)
    kind = _TYPES.get(info.type, "file")
    linkname = info.linkname
    if kind == "hardlink":
        linkname = normalize_path(linkname, what)
    base = posixpath.basename(path)
    parent = posixpath.dirname(path)
    whiteout, opaque = None, False
    if base == OPAQUE_MARKER:
        whiteout, opaque = parent, True
    elif base.startswith(WHITEOUT_PREFIX):
        whiteout = posixpath.join(parent, base[len(WHITEOUT_PREFIX):])
    return TarEntry(
        path=path, type=kind, size=info.size if kind == "file" else 0, mode=info.mode,
        uid=info.uid, gid=info.gid, mtime=float(info.mtime), linkname=linkname,
        whiteout=whiteout, opaque=opaque,
    )


def iter_tar(stream: BinaryIO, what: str, with_content: bool = False,
             seekable: bool = False) -> Iterator[tuple[TarEntry, BinaryIO | None]]:
    """Yield ``(entry, content)`` for each member of the tar in ``stream``.

    ``content`` is a reader of a regular file's bytes when ``with_content`` is set (valid
    only until the next item), else ``None``. ``seekable`` lets tarfile skip file data by
    seeking (fast header-only scans of uncompressed layers). The root entry ``.`` is
    skipped. Corruption raises :class:`CorruptArchiveError` naming ``what``.
    """
    for _, entry, content in iter_tar_members(stream, what, with_content, seekable):
        yield entry, content


def iter_tar_members(stream: BinaryIO, what: str, with_content: bool = True,
                     seekable: bool = False
                     ) -> Iterator[tuple[tarfile.TarInfo, TarEntry, BinaryIO | None]]:
    """As :func:`iter_tar`, with each member's :class:`tarfile.TarInfo` too (its pax
    headers, names and device numbers, for writing the member again)."""
    mode = "r:" if seekable else "r|"
    try:
        with tarfile.open(fileobj=stream, mode=mode) as tar:  # type: ignore[call-overload]
            while True:
                info = tar.next()
                if info is None:
                    break
                entry = _entry(info, what)
                if not entry.path:
                    continue
                content = tar.extractfile(info) if with_content and entry.is_file else None
                yield info, entry, content
                tar.members.clear()  # keep memory flat on huge layers
    except tarfile.ReadError as exc:
        raise CorruptArchiveError(f"{what}: not a valid tar ({exc})") from None
    except EOFError:
        raise CorruptArchiveError(f"{what}: truncated tar") from None
