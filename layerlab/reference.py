"""Image references: skopeo-style transports and Docker-style registry names.

Syntax (the public contract, documented in the README):

* ``docker-archive:PATH[:NAME[:TAG]]`` or ``docker-archive:PATH:@N`` (N-th image)
* ``oci:DIR[:REF]`` and ``oci-archive:PATH[:REF]`` (REF is the ``ref.name`` annotation)
* ``docker://HOST/REPO:TAG`` or ``docker://HOST/REPO@sha256:...``
* a bare path to an existing file or directory, detected by content
* a bare ``[HOST/]REPO[:TAG][@DIGEST]``: a registry image, normalised as Docker does
  (``ubuntu`` -> ``docker.io/library/ubuntu:latest``)
"""

from __future__ import annotations

import ipaddress
import os
import re
import tarfile
from dataclasses import dataclass
from typing import Union

from .digest import Digest
from .errors import ImageNotFoundError, InvalidDigestError, InvalidReferenceError

__all__ = [
    "ArchiveReference", "LayoutReference", "RegistryReference", "Reference",
    "parse_reference", "DEFAULT_REGISTRY", "is_loopback",
]

DEFAULT_REGISTRY = "docker.io"
_LEGACY_REGISTRIES = {"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_HOST_RE = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")


@dataclass(frozen=True)
class ArchiveReference:
    """A docker-save tarball, optionally one image of it by ``name`` (repo:tag) or ``index``."""

    path: str
    name: str | None = None
    index: int | None = None
    transport: str = "docker-archive"

    def __str__(self) -> str:
        suffix = f":{self.name}" if self.name else (f":@{self.index}" if self.index is not None else "")
        return f"{self.transport}:{self.path}{suffix}"


@dataclass(frozen=True)
class LayoutReference:
    """An OCI image layout, as a directory (``oci``) or a tar of one (``oci-archive``)."""

    path: str
    ref: str | None = None
    archive: bool = False

    @property
    def transport(self) -> str:
        return "oci-archive" if self.archive else "oci"

    def __str__(self) -> str:
        return f"{self.transport}:{self.path}" + (f":{self.ref}" if self.ref else "")


@dataclass(frozen=True)
class RegistryReference:
    """An image in a v2 registry: ``registry/repository`` plus a tag and/or a digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None
    transport: str = "docker"

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/``: the digest if pinned, else the tag."""
        return str(self.digest) if self.digest else (self.tag or "latest")

    @property
    def name(self) -> str:
        """``registry/repository`` (the familiar name without tag)."""
        return f"{self.registry}/{self.repository}"

    def with_tag(self, tag: str) -> "RegistryReference":
        return RegistryReference(self.registry, self.repository, tag, None)

    def with_digest(self, digest: Digest) -> "RegistryReference":
        return RegistryReference(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


Reference = Union[ArchiveReference, LayoutReference, RegistryReference]


def parse_registry_reference(text: str) -> RegistryReference:
    """Parse ``[HOST[:PORT]/]REPO[:TAG][@DIGEST]`` and normalise it like Docker."""
    original = text
    if not text or text != text.strip():
        raise InvalidReferenceError(f"invalid image reference {original!r}")
    digest = None
    if "@" in text:
        text, _, digest_text = text.partition("@")
        try:
            digest = Digest(digest_text)
        except InvalidDigestError as exc:
            raise InvalidReferenceError(f"invalid image reference {original!r}: {exc}") from None
    tag = None
    last = text.rsplit("/", 1)[-1]
    if ":" in last:
        text, _, tag = text.rpartition(":")
        if not TAG_RE.match(tag):
            raise InvalidReferenceError(f"invalid tag {tag!r} in {original!r}")
    first, sep, rest = text.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        registry, repository = first, rest
        if not _HOST_RE.match(registry):
            raise InvalidReferenceError(f"invalid registry host {registry!r} in {original!r}")
    else:
        registry, repository = DEFAULT_REGISTRY, text
    if registry in _LEGACY_REGISTRIES:
        registry = DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and "/" not in repository:
        repository = f"library/{repository}"
    if not REPOSITORY_RE.match(repository):
        raise InvalidReferenceError(
            f"invalid repository name {repository!r} in {original!r} "
            "(lowercase letters, digits and separators . _ __ - /)")
    if tag is None and digest is None:
        tag = "latest"
    return RegistryReference(registry, repository, tag, digest)


def _split_path_ref(rest: str) -> tuple[str, str | None]:
    """``PATH[:REF]``: the ref follows the longest prefix that exists as a path (so refs
    may hold colons), else the last colon."""
    if os.path.exists(rest) or ":" not in rest:
        return rest, None
    parts = rest.split(":")
    for i in range(len(parts) - 1, 0, -1):  # the longest existing path: refs may hold colons
        path = ":".join(parts[:i])
        if os.path.exists(path):
            return path, ":".join(parts[i:]) or None
    path, _, ref = rest.rpartition(":")
    return path, ref or None


def _archive_reference(rest: str) -> ArchiveReference:
    if os.path.exists(rest) or ":" not in rest:
        return ArchiveReference(rest)
    # docker-archive:PATH:@N, docker-archive:PATH:NAME:TAG, docker-archive:PATH:NAME
    head, _, last = rest.rpartition(":")
    if last.startswith("@"):
        try:
            return ArchiveReference(head, index=int(last[1:]))
        except ValueError:
            raise InvalidReferenceError(f"invalid image index {last!r} in docker-archive:{rest}") from None
    # find the longest prefix that exists as a file
    parts = rest.split(":")
    for i in range(len(parts) - 1, 0, -1):
        path = ":".join(parts[:i])
        if os.path.exists(path):
            return ArchiveReference(path, name=":".join(parts[i:]))
    return ArchiveReference(parts[0], name=":".join(parts[1:]))


def _detect_path(path: str) -> Reference:
    """Decide what an existing file or directory holds, from its content."""
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "oci-layout")):
            return LayoutReference(path)
        raise InvalidReferenceError(f"{path}: a directory but not an OCI image layout (no oci-layout)")
    try:
        with tarfile.open(path, mode="r:") as tar:
            names = set()
            for info in tar:
                names.add(info.name.lstrip("./") or info.name)
                if "manifest.json" in names:
                    return ArchiveReference(path)
                if len(names) > 10000:
                    break
    except (tarfile.TarError, OSError) as exc:
        raise InvalidReferenceError(f"{path}: not a tar archive ({exc})") from None
    if "oci-layout" in names and "index.json" in names:
        return LayoutReference(path, archive=True)
    raise InvalidReferenceError(
        f"{path}: a tar archive but neither a docker-save archive (no manifest.json) "
        "nor an OCI layout (no oci-layout/index.json)")


def parse_reference(text: str) -> Reference:
    """Parse any reference layerlab understands; see the module docstring."""
    if not isinstance(text, str) or not text:
        raise InvalidReferenceError("empty image reference")
    transport, sep, rest = text.partition(":")
    if sep and transport == "docker" and rest.startswith("//"):
        return parse_registry_reference(rest[2:])
    if sep and transport == "docker-archive":
        return _archive_reference(rest)
    if sep and transport in ("oci", "oci-archive"):
        path, ref = _split_path_ref(rest)
        return LayoutReference(path, ref, archive=transport == "oci-archive")
    if os.path.exists(text):
        return _detect_path(text)
    if text.startswith(("/", "./", "../", "~")) or text.endswith((".tar", ".tar.gz")):
        raise ImageNotFoundError(f"{text}: no such file or directory")
    return parse_registry_reference(text)


def is_loopback(registry: str) -> bool:
    """True for ``localhost``, ``127.0.0.0/8`` and ``::1`` (with or without a port):
    Docker talks plain HTTP to these without being told."""
    host = registry.lower()
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
