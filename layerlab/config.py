"""The image configuration: platform, runtime settings, diff_ids and history."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from . import mediatypes as mt
from .digest import Digest, digest_bytes
from .errors import InvalidDigestError, InvalidManifestError
from .manifest import load_json_object
from .platform import Platform

__all__ = ["HistoryEntry", "ImageConfig", "parse_config"]


@dataclass(frozen=True)
class HistoryEntry:
    """One build step from the config's ``history``; ``empty_layer`` steps made no layer."""

    created_by: str = ""
    created: str | None = None
    comment: str | None = None
    author: str | None = None
    empty_layer: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"created": self.created, "created_by": self.created_by,
                "comment": self.comment, "empty_layer": self.empty_layer}


def _strings(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


@dataclass(frozen=True, kw_only=True)
class ImageConfig:
    """A Docker or OCI image config, parsed from (and keeping) its raw bytes."""

    raw: bytes = field(repr=False)
    digest: Digest
    media_type: str = mt.OCI_CONFIG
    architecture: str = ""
    os: str = ""
    variant: str | None = None
    os_version: str | None = None
    created: str | None = None
    author: str | None = None
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), compare=False)
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    user: str = ""
    working_dir: str = ""
    stop_signal: str | None = None
    diff_ids: tuple[Digest, ...] = ()
    history: tuple[HistoryEntry, ...] = ()

    def __hash__(self) -> int:
        return hash(self.digest)

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def platform(self) -> Platform:
        return Platform(self.os, self.architecture, self.variant, self.os_version)

    def json(self) -> dict[str, Any]:
        import json

        return json.loads(self.raw)

    def layer_history(self) -> list[HistoryEntry | None]:
        """The history entry that made each layer (one per diff_id, ``None`` if unknown).

        Non-empty history entries map, in order, onto the diff_ids; empty-layer entries
        (ENV, CMD ...) are skipped.
        """
        made = [h for h in self.history if not h.empty_layer]
        if len(made) != len(self.diff_ids):
            # Inconsistent history (some builders omit it): align from the end, where
            # the instructions a user wrote are.
            pad: list[HistoryEntry | None] = [None] * max(0, len(self.diff_ids) - len(made))
            return (pad + list(made))[-len(self.diff_ids):] if self.diff_ids else []
        return list(made)

    def runtime(self) -> dict[str, Any]:
        """The settings a container starts with, as a plain dict (for diffs and JSON)."""
        return {
            "env": list(self.env),
            "entrypoint": list(self.entrypoint) if self.entrypoint is not None else None,
            "cmd": list(self.cmd) if self.cmd is not None else None,
            "labels": dict(self.labels),
            "exposed_ports": list(self.exposed_ports),
            "volumes": list(self.volumes),
            "user": self.user,
            "working_dir": self.working_dir,
            "stop_signal": self.stop_signal,
        }


def parse_config(raw: bytes, media_type: str = mt.OCI_CONFIG, what: str = "config",
                 digest: Digest | None = None) -> ImageConfig:
    """Parse an image config from its raw bytes (``digest`` computed unless given)."""
    data = load_json_object(raw, what)
    runtime = data.get("config") or {}
    rootfs = data.get("rootfs") or {}
    if not isinstance(runtime, dict) or not isinstance(rootfs, dict):
        raise InvalidManifestError(f"{what}: 'config' and 'rootfs' must be objects")
    try:
        diff_ids = tuple(Digest(d) for d in rootfs.get("diff_ids") or ())
    except InvalidDigestError as exc:
        raise InvalidManifestError(f"{what}: bad diff_id ({exc})") from None
    history = tuple(
        HistoryEntry(
            created_by=str(h.get("created_by") or ""),
            created=h.get("created"),
            comment=h.get("comment"),
            author=h.get("author"),
            empty_layer=bool(h.get("empty_layer")),
        )
        for h in (data.get("history") or ())
        if isinstance(h, dict)
    )
    return ImageConfig(
        raw=raw,
        digest=digest or digest_bytes(raw),
        media_type=media_type,
        architecture=str(data.get("architecture") or ""),
        os=str(data.get("os") or ""),
        variant=data.get("variant"),
        os_version=data.get("os.version"),
        created=data.get("created"),
        author=data.get("author"),
        env=_strings(runtime.get("Env")) or (),
        entrypoint=_strings(runtime.get("Entrypoint")),
        cmd=_strings(runtime.get("Cmd")),
        labels=MappingProxyType(dict(runtime.get("Labels") or {})),
        exposed_ports=tuple(sorted(runtime.get("ExposedPorts") or {})),
        volumes=tuple(sorted(runtime.get("Volumes") or {})),
        user=str(runtime.get("User") or ""),
        working_dir=str(runtime.get("WorkingDir") or ""),
        stop_signal=runtime.get("StopSignal"),
        diff_ids=diff_ids,
        history=history,
    )
