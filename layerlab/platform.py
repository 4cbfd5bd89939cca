"""Platforms (os/architecture/variant) and choosing one from an index."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from .errors import PlatformError

_ARCH_ALIASES = {
    "x86_64": "amd64", "x86-64": "amd64", "amd64": "amd64",
    "aarch64": "arm64", "arm64": "arm64",
    "armv7l": "arm", "armv6l": "arm", "arm": "arm",
    "i386": "386", "i686": "386", "386": "386",
    "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
}


@dataclass(frozen=True)
class Platform:
    """An image platform as in OCI descriptors and configs."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = field(default=())

    @classmethod
    def parse(cls, text: str) -> "Platform":
        """``linux/arm64``, ``linux/arm/v7``, ``amd64`` (os defaults to linux)."""
        parts = [p for p in text.strip().split("/") if p]
        if not parts or len(parts) > 3:
            raise PlatformError(f"invalid platform {text!r}: use os/arch[/variant]")
        if len(parts) == 1:
            parts.insert(0, "linux")
        arch = _ARCH_ALIASES.get(parts[1], parts[1])
        return cls(parts[0], arch, parts[2] if len(parts) == 3 else None)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Platform":
        return cls(
            os=str(data.get("os", "")),
            architecture=str(data.get("architecture", "")),
            variant=data.get("variant") or None,
            os_version=data.get("os.version") or None,
            os_features=tuple(data.get("os.features") or ()),
        )

    @classmethod
    def host(cls) -> "Platform":
        """The platform of this machine, as Docker names it."""
        try:
            uname = os.uname()
            machine, system = uname.machine.lower(), uname.sysname.lower()
        except AttributeError:  # Windows
            import platform

            machine, system = platform.machine().lower(), platform.system().lower()
        arch = _ARCH_ALIASES.get(machine, machine)
        variant = None
        if arch == "arm64":
            variant = "v8"
        elif arch == "arm":
            variant = "v" + machine[4] if machine.startswith("armv") and len(machine) > 4 else "v7"
        return cls("linux" if system in ("linux", "darwin") else system, arch, variant)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        return out

    def matches(self, wanted: "Platform") -> bool:
        """True if this platform satisfies ``wanted`` (a missing wanted variant matches any;
        arm64's variant defaults to v8)."""
        if self.os != wanted.os or self.architecture != wanted.architecture:
            return False
        if wanted.variant is None:
            return True
        mine = self.variant or ("v8" if self.architecture == "arm64" else None)
        return mine == wanted.variant

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def choose(candidates: Iterable[tuple[Platform | None, Any]], wanted: Platform | str | None,
           what: str) -> Any:
    """Pick the item whose platform matches ``wanted`` (default: the host).

    ``candidates`` are (platform, item) pairs; raises :class:`PlatformError` naming the
    available platforms when none matches.
    """
    items = list(candidates)
    target = Platform.parse(wanted) if isinstance(wanted, str) else (wanted or Platform.host())
    for plat, item in items:
        if plat is not None and plat.matches(target):
            return item
    available = ", ".join(str(p) for p, _ in items if p is not None) or "none"
    raise PlatformError(f"{what}: no image for platform {target} (available: {available})")
