"""Which layers a set of images share, and what that saves a registry and a push.

A registry stores each blob once, by its digest; a push skips blobs the registry already
has. So for any set of images (tags of one repository, several repositories, archives):

* the naive size is the sum of the image sizes;
* the deduplicated size is the sum over distinct layer digests - what the registry
  stores and what pushing them all, one after another, sends;
* per image: the bytes it shares with at least one other image, and the bytes only it has;
* for a push order: the layers each push sends given the ones pushed before.

The same content under two compressions (same ``diff_id``, different ``digest``) is two
blobs for a registry; :attr:`SharedLayers.recompressed` lists such content.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ..model import Image, Layer
from ..units import format_size
from ._present import html_block, html_table, image_label, short_digest

__all__ = ["LayerUse", "ImageShare", "PushStep", "SharedLayers", "shared_layers"]


@dataclass(frozen=True)
class LayerUse:
    """One distinct layer blob and the images (by label) that use it."""

    digest: str
    diff_id: str | None
    size: int
    uncompressed_size: int | None
    images: tuple[str, ...]
    created_by: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "diff_id": self.diff_id, "size": self.size,
                "uncompressed_size": self.uncompressed_size, "images": list(self.images),
                "created_by": self.created_by}


@dataclass(frozen=True)
class ImageShare:
    """One image of the set: its size, the bytes it shares with others, its own bytes."""

    label: str
    reference: str
    digest: str
    layers: int
    size: int
    shared_bytes: int
    unique_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "reference": self.reference, "digest": self.digest,
                "layers": self.layers, "size": self.size, "shared_bytes": self.shared_bytes,
                "unique_bytes": self.unique_bytes}


@dataclass(frozen=True)
class PushStep:
    """Pushing ``label`` after the images before it: the layer digests sent, their bytes."""

    label: str
    sent: tuple[str, ...]
    sent_bytes: int
    skipped_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "sent": list(self.sent), "sent_bytes": self.sent_bytes,
                "skipped_bytes": self.skipped_bytes}


@dataclass(frozen=True)
class SharedLayers:
    """The layer-by-image picture of a set of images (see the module docstring)."""

    images: tuple[ImageShare, ...]
    layers: tuple[LayerUse, ...]
    naive_bytes: int
    deduplicated_bytes: int
    push_sequence: tuple[PushStep, ...]
    recompressed: tuple[str, ...] = ()

    @property
    def saved_bytes(self) -> int:
        """What deduplication saves: naive minus deduplicated."""
        return self.naive_bytes - self.deduplicated_bytes

    def push_after(self, image: str, *pushed: str) -> tuple[LayerUse, ...]:
        """The layers pushing ``image`` sends when the images ``pushed`` (labels) are
        already in the registry."""
        have = {u.digest for u in self.layers if any(label in u.images for label in pushed)}
        return tuple(u for u in self.layers if image in u.images and u.digest not in have)

    def to_json(self) -> dict[str, Any]:
        """The ``layerlab shared --json`` shape."""
        return {
            "images": [i.to_json() for i in self.images],
            "layers": [u.to_json() for u in self.layers],
            "totals": {"naive_bytes": self.naive_bytes,
                       "deduplicated_bytes": self.deduplicated_bytes,
                       "saved_bytes": self.saved_bytes},
            "push_sequence": [s.to_json() for s in self.push_sequence],
            "recompressed": list(self.recompressed),
        }

    def to_frame(self):
        """The layer-by-image table: index (digest, diff_id); columns size,
        uncompressed_size, images (how many use it), then one boolean column per image."""
        import pandas as pd

        labels = [i.label for i in self.images]
        rows = []
        for u in self.layers:
            row: dict[str, Any] = {"digest": u.digest, "diff_id": u.diff_id, "size": u.size,
                                   "uncompressed_size": u.uncompressed_size,
                                   "images": len(u.images)}
            row.update({label: label in u.images for label in labels})
            rows.append(row)
        frame = pd.DataFrame(rows, columns=["digest", "diff_id", "size", "uncompressed_size",
                                            "images", *labels])
        return frame.set_index(["digest", "diff_id"])

    def images_frame(self):
        """One row per image: size, shared and unique bytes."""
        import pandas as pd

        return pd.DataFrame([i.to_json() for i in self.images]).set_index("label")

    def plot(self):
        """A heatmap (layers x images, cell = layer size where used) beside a stacked bar
        of shared vs unique bytes per image."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        labels = [i.label for i in self.images]
        fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4],
                            subplot_titles=("layers used by each image", "shared vs unique bytes"))
        z = [[u.size if label in u.images else None for label in labels] for u in self.layers]
        fig.add_trace(go.Heatmap(z=z, x=labels, y=[short_digest(u.digest) for u in self.layers],
                                 colorscale="Blues", colorbar={"title": "bytes", "x": 0.55},
                                 hovertemplate="%{y}<br>%{x}<br>%{z} bytes<extra></extra>"),
                      row=1, col=1)
        fig.add_trace(go.Bar(x=labels, y=[i.shared_bytes for i in self.images], name="shared"),
                      row=1, col=2)
        fig.add_trace(go.Bar(x=labels, y=[i.unique_bytes for i in self.images], name="unique"),
                      row=1, col=2)
        fig.update_yaxes(autorange="reversed", row=1, col=1)
        fig.update_layout(barmode="stack", height=max(350, 22 * len(self.layers) + 150),
                          title=f"{len(self.images)} images: {format_size(self.naive_bytes)} naive, "
                                f"{format_size(self.deduplicated_bytes)} stored")
        return fig

    def summary(self) -> str:
        return (f"{len(self.images)} images, {len(self.layers)} distinct layers: "
                f"{format_size(self.naive_bytes)} naive, {format_size(self.deduplicated_bytes)} "
                f"deduplicated ({format_size(self.saved_bytes)} saved)")

    def __repr__(self) -> str:
        return (f"<SharedLayers {len(self.images)} images, {len(self.layers)} layers, "
                f"naive {self.naive_bytes}, deduplicated {self.deduplicated_bytes}>")

    def _repr_html_(self) -> str:
        image_rows = [(i.label, i.layers, format_size(i.size), format_size(i.shared_bytes),
                       format_size(i.unique_bytes)) for i in self.images]
        labels = [i.label for i in self.images]
        layer_rows = [(short_digest(u.digest), format_size(u.size),
                       *("x" if label in u.images else "" for label in labels))
                      for u in self.layers]
        return html_block("Shared layers", self.summary(),
                          html_table(["image", "layers", "size", "shared", "unique"],
                                     image_rows, "lrrrr"),
                          html_table(["layer", "size", *labels], layer_rows,
                                     "lr" + "l" * len(labels)))


def image_labels(images: Sequence[Image]) -> list[str]:
    """One label per image (its reference, ``#2``, ``#3``... on repeats), in order."""
    labels: list[str] = []
    for image in images:
        label = image_label(image)
        if label in labels:
            n = 2
            while f"{label}#{n}" in labels:
                n += 1
            label = f"{label}#{n}"
        labels.append(label)
    return labels


def shared_layers(images: Sequence[Image]) -> SharedLayers:
    """The shared-layer picture of ``images`` (any sources; only manifests and configs
    are needed, no layer is read). Push order is the order given."""
    if not images:
        raise ValueError("shared_layers needs at least one image")
    labels = image_labels(images)
    users: dict[str, list[str]] = {}
    first: dict[str, Layer] = {}
    for label, image in zip(labels, images):
        for layer in image.layers:
            key = str(layer.digest)
            first.setdefault(key, layer)
            if label not in users.setdefault(key, []):
                users[key].append(label)
    layers = tuple(LayerUse(key, str(layer.diff_id) if layer.diff_id else None, layer.size,
                            layer.uncompressed_size, tuple(users[key]), layer.created_by)
                   for key, layer in first.items())
    shares = []
    for label, image in zip(labels, images):
        digests = {str(layer.digest) for layer in image.layers}
        shared = sum(first[d].size for d in digests if len(users[d]) > 1)
        unique = sum(first[d].size for d in digests if len(users[d]) == 1)
        shares.append(ImageShare(label, image.reference, str(image.digest), len(image.layers),
                                 image.size, shared, unique))
    pushed: set[str] = set()
    steps = []
    for label, image in zip(labels, images):
        sent: list[str] = []
        sent_bytes = skipped = 0
        for layer in image.layers:
            key = str(layer.digest)
            if key in pushed:
                skipped += layer.size
            else:
                pushed.add(key)
                sent.append(key)
                sent_bytes += layer.size
        steps.append(PushStep(label, tuple(sent), sent_bytes, skipped))
    by_diff_id: dict[str, set[str]] = {}
    for u in layers:
        if u.diff_id:
            by_diff_id.setdefault(u.diff_id, set()).add(u.digest)
    recompressed = tuple(d for d, digests in by_diff_id.items() if len(digests) > 1)
    return SharedLayers(
        images=tuple(shares), layers=layers,
        naive_bytes=sum(image.size for image in images),
        deduplicated_bytes=sum(layer.size for layer in first.values()),
        push_sequence=tuple(steps), recompressed=recompressed)
