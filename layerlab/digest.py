"""Content digests: the ``algorithm:encoded`` value type and streaming hashers.

The grammar is the OCI image spec's::

    digest    ::= algorithm ":" encoded
    algorithm ::= component (separator component)*      component ::= [a-z0-9]+
    separator ::= [+._-]                                 encoded   ::= [a-zA-Z0-9=_-]+

Only the registered algorithms ``sha256`` (64 lowercase hex) and ``sha512`` (128
lowercase hex) are accepted; anything else raises :class:`InvalidDigestError`.
"""

from __future__ import annotations

import hashlib
import re
from typing import BinaryIO, Iterable

from .errors import DigestMismatchError, InvalidDigestError

__all__ = [
    "Digest",
    "Hasher",
    "HashingReader",
    "digest_bytes",
    "digest_file",
    "digest_stream",
    "EMPTY_SHA256",
    "SCHEMA1_EMPTY_LAYER",
    "CHUNK_SIZE",
]

CHUNK_SIZE = 1 << 20  # 1 MiB: large enough that hashlib releases the GIL and syscalls are rare

_GRAMMAR = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_ALGORITHMS = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"^[a-f0-9]+$")


class Digest(str):
    """A validated content digest such as ``sha256:e3b0c4...``.

    A ``str`` subclass, so it compares, hashes and serialises like the plain string.
    """

    __slots__ = ()

    def __new__(cls, value: str) -> "Digest":
        if isinstance(value, Digest):
            return value
        if not isinstance(value, str):
            raise InvalidDigestError(f"digest must be a string, not {type(value).__name__}")
        if not _GRAMMAR.match(value):
            raise InvalidDigestError(f"invalid digest {value!r}: not of the form algorithm:hex")
        algorithm, encoded = value.split(":", 1)
        length = _ALGORITHMS.get(algorithm)
        if length is None:
            raise InvalidDigestError(
                f"unsupported digest algorithm {algorithm!r} in {value!r} (sha256 and sha512 only)"
            )
        if len(encoded) != length or not _HEX.match(encoded):
            raise InvalidDigestError(
                f"invalid {algorithm} digest {value!r}: need {length} lowercase hex characters"
            )
        return super().__new__(cls, value)

    @property
    def algorithm(self) -> str:
        """``sha256`` or ``sha512``."""
        return self.split(":", 1)[0]

    @property
    def hex(self) -> str:  # type: ignore[override]
        """The encoded part (lowercase hex)."""
        return self.split(":", 1)[1]

    @property
    def short(self) -> str:
        """The first 12 hex characters, as Docker prints image ids."""
        return self.hex[:12]

    @classmethod
    def is_valid(cls, value: str) -> bool:
        """True when ``value`` parses as a supported digest."""
        try:
            cls(value)
        except InvalidDigestError:
            return False
        return True

    def __repr__(self) -> str:
        return f"Digest({str(self)!r})"


EMPTY_SHA256 = Digest("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
"""The sha256 of zero bytes."""

SCHEMA1_EMPTY_LAYER = Digest(
    "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"
)
"""The 32-byte gzip of an empty tar that Docker schema1 manifests use for no-op steps."""


class Hasher:
    """An incremental hasher that yields a :class:`Digest` and counts bytes."""

    __slots__ = ("algorithm", "_h", "size")

    def __init__(self, algorithm: str = "sha256") -> None:
        if algorithm not in _ALGORITHMS:
            raise InvalidDigestError(f"unsupported digest algorithm {algorithm!r}")
        self.algorithm = algorithm
        self._h = hashlib.new(algorithm)
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._h.update(data)
        self.size += len(data)

    def digest(self) -> Digest:
        return Digest(f"{self.algorithm}:{self._h.hexdigest()}")


def digest_bytes(data: bytes, algorithm: str = "sha256") -> Digest:
    """The digest of an in-memory byte string."""
    return Digest(f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}")


def digest_stream(stream: BinaryIO, algorithm: str = "sha256") -> tuple[Digest, int]:
    """Hash a binary stream to its end in bounded memory; return ``(digest, size)``."""
    hasher = Hasher(algorithm)
    buf = bytearray(CHUNK_SIZE)
    view = memoryview(buf)
    readinto = getattr(stream, "readinto", None)
    if readinto is not None:
        while True:
            n = readinto(buf)
            if not n:
                break
            hasher.update(view[:n])
    else:
        for chunk in iter(lambda: stream.read(CHUNK_SIZE), b""):
            hasher.update(chunk)
    return hasher.digest(), hasher.size


def digest_file(path: str, algorithm: str = "sha256") -> tuple[Digest, int]:
    """Hash a file in bounded memory; return ``(digest, size)``."""
    with open(path, "rb", buffering=0) as f:
        return digest_stream(f, algorithm)


def verify(what: str, expected: Digest | str, actual: Digest | str) -> None:
    """Raise :class:`DigestMismatchError` unless the two digests are equal."""
    if str(expected) != str(actual):
        raise DigestMismatchError(what, str(expected), str(actual))


class HashingReader:
    """Wrap a binary stream; hash every byte read through it.

    ``expected`` (optional) is checked by :meth:`verify` once the stream is consumed.
    """

    def __init__(self, stream: BinaryIO, algorithm: str = "sha256") -> None:
        self._stream = stream
        self.hasher = Hasher(algorithm)

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        if data:
            self.hasher.update(data)
        return data

    def readinto(self, buf: bytearray | memoryview) -> int:
        readinto = getattr(self._stream, "readinto", None)
        if readinto is None:
            data = self._stream.read(len(buf))
            n = len(data)
            buf[:n] = data
        else:
            n = readinto(buf) or 0
        if n:
            self.hasher.update(memoryview(buf)[:n])
        return n

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        """Read (and hash) whatever is left."""
        buf = bytearray(CHUNK_SIZE)
        while self.readinto(buf):
            pass

    def close(self) -> None:
        self._stream.close()

    @property
    def size(self) -> int:
        return self.hasher.size

    def digest(self) -> Digest:
        return self.hasher.digest()


def iter_chunks(stream: BinaryIO, chunk_size: int = CHUNK_SIZE) -> Iterable[bytes]:
    """Yield a stream's content in chunks of ``chunk_size`` bytes (the last may be shorter)."""
    while True:
        chunk = stream.read(chunk_size)
        if not chunk:
            return
        yield chunk
