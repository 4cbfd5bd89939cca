"""What a rewrite made: the new image, and each new layer's sources and fate."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any

from ..model import Image, Layer

__all__ = ["LayerChange", "RewriteResult"]


@dataclass(frozen=True)
class LayerChange:
    """One layer of the new image: ``position`` in it, the source layer ``indexes`` it
    was made from, and ``action``: ``kept`` (the source blob itself), ``recompressed``
    (same tar, new compression), ``rewritten`` (one layer's tar written again: files
    excluded or timestamps set) or ``merged`` (several layers in one tar)."""

    position: int
    indexes: tuple[int, ...]
    action: str
    sources: tuple[Layer, ...]
    layer: Layer

    def to_json(self) -> dict[str, Any]:
        return {"position": self.position, "source_layers": list(self.indexes),
                "action": self.action, "digest": str(self.layer.digest),
                "diff_id": str(self.layer.diff_id) if self.layer.diff_id else None,
                "size": self.layer.size, "uncompressed_size": self.layer.uncompressed_size,
                "media_type": self.layer.media_type,
                "source_size": sum(s.size for s in self.sources),
                "created_by": self.layer.created_by}


@dataclass(frozen=True)
class RewriteResult:
    """The result of :func:`layerlab.rewrite`: ``image`` is the new image (its new
    blobs live in ``workdir``, valid until :meth:`cleanup`), ``changes`` one entry per
    new layer. Use it as a context manager to clean up after."""

    source: Image
    image: Image
    changes: tuple[LayerChange, ...]
    workdir: str
    owns_workdir: bool
    seconds: float

    def copy(self, destination: str, **options: Any) -> Any:
        """Write the new image to any transport (:func:`layerlab.copy`); returns its
        :class:`~layerlab.pusher.PushResult`."""
        from ..pusher import copy

        options.setdefault("progress", False)
        return copy(self.image, destination, **options)

    def cleanup(self) -> None:
        """Remove the work directory (when the rewrite made it)."""
        if self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "RewriteResult":
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    @property
    def bytes_written(self) -> int:
        """Stored bytes of the new blobs (layers not kept as they were)."""
        return sum(c.layer.size for c in self.changes if c.action != "kept")

    def to_json(self) -> dict[str, Any]:
        """The ``layerlab rewrite --json`` shape (documented in the README)."""
        def summary(image: Image) -> dict[str, Any]:
            return {"reference": image.reference, "manifest_digest": str(image.digest),
                    "config_digest": str(image.config.digest), "layers": len(image.layers),
                    "size": image.size, "uncompressed_size": image.uncompressed_size}

        return {"source": summary(self.source), "result": summary(self.image),
                "layers": [c.to_json() for c in self.changes],
                "bytes_written": self.bytes_written, "seconds": round(self.seconds, 3)}

    def to_frame(self):
        """One row per new layer (pandas)."""
        import pandas as pd

        return pd.DataFrame([c.to_json() for c in self.changes])

    def _repr_html_(self) -> str:
        from .._html import html_card
        from ..units import format_size

        facts = {"layers": f"{len(self.source.layers)} -> {len(self.image.layers)}",
                 "size": f"{format_size(self.source.size)} -> {format_size(self.image.size)}",
                 "manifest": self.image.digest.short, "written": format_size(self.bytes_written),
                 "seconds": f"{self.seconds:.2f}"}
        rows = [{"#": c.position, "from": ",".join(map(str, c.indexes)), "action": c.action,
                 "digest": c.layer.digest.short, "size": c.layer.size,
                 "source size": sum(s.size for s in c.sources)} for c in self.changes]
        return html_card(f"Rewrite of {self.source.name or self.source.reference}", facts, rows)

    def __repr__(self) -> str:
        return (f"<RewriteResult {len(self.source.layers)} -> {len(self.image.layers)} layers "
                f"{self.source.size} -> {self.image.size} bytes {self.image.digest.short}>")
