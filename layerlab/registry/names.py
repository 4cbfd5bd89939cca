"""Repository names, tags and references as the OCI distribution spec defines them.

Every storage path the registry builds comes from a value validated here: a repository
name matching the spec's regular expression (no empty, ``.``, ``..`` or ``_``-prefixed
component is possible), a tag matching the tag expression, or a :class:`Digest`.
"""

from __future__ import annotations

import re

from ..digest import Digest
from ..errors import InvalidDigestError
from .codes import APIError

NAME_PATTERN = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
TAG_PATTERN = r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}"
MAX_NAME_LENGTH = 255

_NAME = re.compile(NAME_PATTERN)
_TAG = re.compile(TAG_PATTERN)


def is_valid_name(name: str) -> bool:
    """True when ``name`` is a valid repository name (spec regex, at most 255 characters)."""
    return len(name) <= MAX_NAME_LENGTH and _NAME.fullmatch(name) is not None


def is_valid_tag(tag: str) -> bool:
    """True when ``tag`` matches ``[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}``."""
    return _TAG.fullmatch(tag) is not None


def check_name(name: str) -> str:
    """Return ``name`` or raise ``NAME_INVALID`` (400)."""
    if not is_valid_name(name):
        raise APIError("NAME_INVALID", f"invalid repository name {name!r}", detail={"name": name})
    return name


def check_digest(value: str) -> Digest:
    """Parse a digest from a URL or query; a malformed one is ``DIGEST_INVALID`` (400)."""
    try:
        return Digest(value)
    except InvalidDigestError as exc:
        raise APIError("DIGEST_INVALID", str(exc), detail={"digest": value}) from None


def looks_like_digest(reference: str) -> bool:
    """A manifest reference is a digest attempt when it has a colon (tags cannot)."""
    return ":" in reference
