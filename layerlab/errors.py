"""The layerlab exception hierarchy.

Every error layerlab raises on purpose is a :class:`LayerlabError`.  Catch that to
handle "anything layerlab refused"; catch a subclass to handle one kind of problem.
Messages name the file, blob or URL concerned and say what is wrong, in one line.
"""

from __future__ import annotations


class LayerlabError(Exception):
    """Root of every error layerlab raises deliberately."""


# --- values ---------------------------------------------------------------------------
class InvalidDigestError(LayerlabError, ValueError):
    """A string is not a valid ``algorithm:encoded`` digest, or uses an unsupported algorithm."""


class DigestMismatchError(LayerlabError):
    """Bytes do not hash to the digest they were declared with."""

    def __init__(self, what: str, expected: str, actual: str) -> None:
        super().__init__(f"{what}: digest mismatch, expected {expected}, got {actual}")
        self.what = what
        self.expected = expected
        self.actual = actual


class SizeMismatchError(LayerlabError):
    """Bytes do not have the size they were declared with."""

    def __init__(self, what: str, expected: int, actual: int) -> None:
        super().__init__(f"{what}: size mismatch, expected {expected} bytes, got {actual}")
        self.what = what
        self.expected = expected
        self.actual = actual


class InvalidReferenceError(LayerlabError, ValueError):
    """An image reference cannot be parsed."""


class ImageNotFoundError(LayerlabError):
    """A reference is well formed but names no image (no such file, tag or entry)."""


class PlatformError(LayerlabError):
    """No image of the wanted platform in an index, or an index where an image is needed."""


# --- documents ------------------------------------------------------------------------
class ManifestError(LayerlabError):
    """A manifest, index or config cannot be used."""


class InvalidManifestError(ManifestError):
    """A manifest, index or config is not valid JSON or lacks required fields."""


class UnknownMediaTypeError(ManifestError):
    """A media type layerlab does not know how to read."""


# --- archives and layouts -------------------------------------------------------------
class ArchiveError(LayerlabError):
    """A tarball or OCI layout is unreadable."""


class NotAnArchiveError(ArchiveError):
    """The file is not a tar archive (or not an image archive of a known kind)."""


class CorruptArchiveError(ArchiveError):
    """The archive or a compressed layer is truncated or corrupt."""


class MissingBlobError(ArchiveError):
    """A blob the manifest or index names is absent."""


class UnsafePathError(ArchiveError):
    """A path inside an archive would escape its root (``..``, absolute path, link loop)."""


# --- registries -----------------------------------------------------------------------
class RegistryError(LayerlabError):
    """A registry answered with an error, or could not be reached.

    ``code`` is the OCI distribution error code (``BLOB_UNKNOWN``, ``DIGEST_INVALID``,
    ...) when the registry sent one, ``status`` the HTTP status, ``url`` the request URL.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.url = url


class RegistryUnavailableError(RegistryError):
    """The registry could not be reached, or kept failing after bounded retries."""


class AuthenticationError(RegistryError):
    """The registry refused our credentials (401 / ``UNAUTHORIZED``, 403 / ``DENIED``)."""


class RegistryProtocolError(RegistryError):
    """The registry answered something the protocol does not allow (HTML, a lying digest...)."""


# --- pushing --------------------------------------------------------------------------
class RegistryRootBusyError(LayerlabError):
    """An offline operation (``layerlab registry gc --root``) on a root that a running
    registry serves."""


class PushError(LayerlabError):
    """A push could not complete; nothing partial (no manifest) was written."""


class CacheError(LayerlabError):
    """The local digest cache cannot be read or written."""


class RewriteError(LayerlabError, ValueError):
    """A rewrite that cannot be done as asked: layers that do not commute, a merge group
    that is not a run of layers, a hard link to an excluded file (:func:`layerlab.rewrite`)."""


class ZstdChunkedError(ArchiveError):
    """A layer cannot be written as zstd:chunked (a tar entry the format has no place
    for), or a zstd:chunked blob's table of contents is missing or corrupt."""
