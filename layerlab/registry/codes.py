"""The OCI distribution error codes, their HTTP statuses, and the JSON error body."""

from __future__ import annotations

import json
from typing import Any, Mapping

from ..errors import RegistryError

#: code -> (default HTTP status, the spec's description)
ERROR_CODES: dict[str, tuple[int, str]] = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": (400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (400, "manifest references a manifest or blob unknown to registry"),
    "MANIFEST_INVALID": (400, "manifest invalid"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown to registry"),
    "MANIFEST_UNVERIFIED": (400, "manifest failed signature verification"),  # Docker's schema1
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "SIZE_INVALID": (400, "provided length did not match content length"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "UNSUPPORTED": (405, "the operation is unsupported"),
    "TOOMANYREQUESTS": (429, "too many requests"),
    "UNKNOWN": (500, "unknown error"),  # not a spec code: 5xx bodies are unconstrained
}


class APIError(RegistryError):
    """An error the registry server answers with: an OCI code, an HTTP status, a JSON body.

    ``errors`` holds extra ``(code, message, detail)`` entries for answers listing several
    problems (a manifest naming several unknown blobs).  ``headers`` are added to the
    response (``Range`` on a 416, ``WWW-Authenticate`` on a 401).
    """

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        status: int | None = None,
        detail: Any = None,
        headers: Mapping[str, str] | None = None,
        more: list[tuple[str, str, Any]] | None = None,
    ) -> None:
        default_status, description = ERROR_CODES[code]
        super().__init__(message or description, code=code, status=status or default_status)
        self.detail = detail
        self.headers = dict(headers or {})
        self.more = list(more or [])

    def body(self) -> bytes:
        """The spec's JSON error document."""
        entries = [(self.code, str(self), self.detail)] + self.more
        errors = []
        for code, message, detail in entries:
            entry: dict[str, Any] = {"code": code, "message": message}
            if detail is not None:
                entry["detail"] = detail
            errors.append(entry)
        return json.dumps({"errors": errors}).encode()
