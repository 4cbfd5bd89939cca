"""Build-to-build reuse: what each build of a series (CI builds of one repository, or
any list of images, oldest first) reused from the build before it, and what it cost.

Layers are compared by content: ``diff_id``, falling back to ``digest`` where the
config gives none. For each build, against the previous one:

* **first diverging layer**: the first index whose layer differs (``None`` when every
  layer matches; for the first build, which has nothing to compare with);
* **reused** layers: the common prefix, the layers a build cache hits (a layer is reused
  while it and every layer below it are the same content in the same order, i.e. the
  same chain ID); **rebuilt**: every layer from the first diverging one up;
* **cache-hit rate**: reused layers / layers (0 for the first build);
* **pushed bytes**: the stored size of each layer blob (by ``digest``) that no earlier
  build of the series had: what a registry that received the builds in order is sent;
* **pulled bytes**: the stored size of the rebuilt layers: a node that pulled the
  previous build downloads every layer from the first one whose chain it lacks (Docker's
  download manager looks layers up by chain ID and fetches everything above the first
  missing one), so the first build pulls everything.

Running totals go with each build: bytes pushed and pulled so far, and reused layers /
layers over the builds after the first so far. Only manifests and configs are read; :meth:`ReuseResult.order_advice`
(:mod:`.layerorder`) reads the layers' tar headers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple, Sequence

from ..errors import LayerlabError
from ..model import Image, Layer
from ..units import format_size
from ._present import html_block, html_table, percent, short_digest
from .shared import image_labels

__all__ = ["BuildReuse", "ReuseResult", "ReuseInputError", "build_reuse", "layer_key"]


class ReuseInputError(LayerlabError, ValueError):
    """A series that reuse cannot measure (fewer than two builds)."""


def layer_key(layer: Layer) -> str:
    """A layer's content identity: its ``diff_id``, else its ``digest``."""
    return str(layer.diff_id or layer.digest)


class Slot(NamedTuple):
    """One layer as the measurement sees it: the blob a registry stores it as, its
    content key and its stored size."""

    blob: str
    key: str
    size: int


class Measured(NamedTuple):
    reused: int
    pushed: tuple[int, ...]
    pushed_bytes: int
    pulled_bytes: int


def common_prefix(a: Sequence[str], b: Sequence[str]) -> int:
    """How many leading items ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def measure(series: Sequence[Sequence[Slot]]) -> list[Measured]:
    """Reuse, pushes and pulls of a series of builds given as layer slots (oldest
    first): the rules of the module docstring, shared by :func:`build_reuse` and the
    replay of a proposed layer order."""
    stored: set[str] = set()
    out: list[Measured] = []
    previous: list[str] | None = None
    for slots in series:
        keys = [s.key for s in slots]
        reused = 0 if previous is None else common_prefix(keys, previous)
        pushed = []
        for i, slot in enumerate(slots):
            if slot.blob not in stored:
                stored.add(slot.blob)
                pushed.append(i)
        out.append(Measured(reused, tuple(pushed), sum(slots[i].size for i in pushed),
                            sum(s.size for s in slots[reused:])))
        previous = keys
    return out


def slots_of(image: Image) -> list[Slot]:
    """The layers of ``image`` as measurement slots."""
    return [Slot(str(layer.digest), layer_key(layer), layer.size) for layer in image.layers]


@dataclass(frozen=True)
class BuildReuse:
    """One build of the series, measured against the builds before it."""

    position: int
    label: str
    reference: str
    digest: str
    created: str | None
    layers: int
    size: int
    first_diverging: int | None
    reused: int
    pushed: tuple[int, ...]
    pushed_bytes: int
    pulled_bytes: int
    total_pushed_bytes: int
    total_pulled_bytes: int
    total_cache_hit_rate: float

    @property
    def rebuilt(self) -> tuple[int, ...]:
        """Indexes of the layers rebuilt (every one from the first diverging layer up)."""
        return tuple(range(self.reused, self.layers))

    @property
    def cache_hit_rate(self) -> float:
        """Reused layers / layers (0.0 for an image without layers)."""
        return self.reused / self.layers if self.layers else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"position": self.position, "label": self.label, "reference": self.reference,
                "digest": self.digest, "created": self.created, "layers": self.layers,
                "size": self.size, "first_diverging": self.first_diverging,
                "reused": self.reused, "rebuilt": list(self.rebuilt),
                "pushed": list(self.pushed), "pushed_bytes": self.pushed_bytes,
                "pulled_bytes": self.pulled_bytes, "cache_hit_rate": self.cache_hit_rate,
                "total_pushed_bytes": self.total_pushed_bytes,
                "total_pulled_bytes": self.total_pulled_bytes,
                "total_cache_hit_rate": self.total_cache_hit_rate}


@dataclass(frozen=True)
class ReuseResult:
    """Build-to-build reuse of a series (see the module docstring)."""

    builds: tuple[BuildReuse, ...]
    _images: tuple[Image, ...] = field(default=(), repr=False, compare=False)

    @property
    def pushed_bytes(self) -> int:
        """Bytes all the pushes sent."""
        return sum(b.pushed_bytes for b in self.builds)

    @property
    def pulled_bytes(self) -> int:
        """Bytes all the pulls sent (each build pulled by a node holding the previous)."""
        return sum(b.pulled_bytes for b in self.builds)

    @property
    def cache_hit_rate(self) -> float:
        """Reused layers / layers over every build after the first."""
        later = self.builds[1:]
        layers = sum(b.layers for b in later)
        return sum(b.reused for b in later) / layers if layers else 0.0

    def order_advice(self, *, workers: int | None = None):
        """Layer-order advice for this series (:func:`~.layerorder.layer_order_advice`):
        reads the builds' layer headers."""
        from .layerorder import layer_order_advice

        return layer_order_advice(self._images, workers=workers)

    def to_json(self) -> dict[str, Any]:
        """The ``layerlab reuse --json`` shape (without ``advice``)."""
        return {"builds": [b.to_json() for b in self.builds],
                "totals": {"builds": len(self.builds),
                           "layers": sum(b.layers for b in self.builds),
                           "reused": sum(b.reused for b in self.builds),
                           "naive_bytes": sum(b.size for b in self.builds),
                           "pushed_bytes": self.pushed_bytes,
                           "pulled_bytes": self.pulled_bytes,
                           "cache_hit_rate": self.cache_hit_rate}}

    def to_frame(self):
        """One row per build (index: label), the columns of :meth:`BuildReuse.to_json`."""
        import pandas as pd

        return pd.DataFrame([b.to_json() for b in self.builds]).set_index("label")

    def plot(self):
        """Per build: bars of bytes pushed and pulled with the cache-hit rate as a line
        (right axis) above; the first diverging layer and the layer count below."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        labels = [b.label for b in self.builds]
        fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35],
                            vertical_spacing=0.08,
                            specs=[[{"secondary_y": True}], [{"secondary_y": False}]],
                            subplot_titles=("bytes each build sends", "first diverging layer"))
        fig.add_bar(x=labels, y=[b.pushed_bytes for b in self.builds], name="pushed",
                    row=1, col=1)
        fig.add_bar(x=labels, y=[b.pulled_bytes for b in self.builds], name="pulled",
                    row=1, col=1)
        fig.add_trace(go.Scatter(x=labels, y=[b.cache_hit_rate for b in self.builds],
                                 name="cache-hit rate", mode="lines+markers"),
                      row=1, col=1, secondary_y=True)
        fig.add_trace(go.Scatter(x=labels, y=[b.first_diverging for b in self.builds],
                                 name="first diverging layer", mode="lines+markers"),
                      row=2, col=1)
        fig.add_trace(go.Scatter(x=labels, y=[b.layers for b in self.builds], name="layers",
                                 mode="lines", line={"dash": "dot"}), row=2, col=1)
        fig.update_yaxes(title_text="bytes", row=1, col=1, secondary_y=False)
        fig.update_yaxes(title_text="cache-hit rate", range=[0, 1.05], row=1, col=1,
                         secondary_y=True)
        fig.update_yaxes(title_text="layer index", row=2, col=1)
        fig.update_layout(barmode="group", height=520, title=self.summary())
        return fig

    def summary(self) -> str:
        return (f"{len(self.builds)} builds: {format_size(self.pushed_bytes)} pushed, "
                f"{format_size(self.pulled_bytes)} pulled, cache-hit rate "
                f"{percent(self.cache_hit_rate)} after the first build")

    def __repr__(self) -> str:
        return (f"<ReuseResult {len(self.builds)} builds, pushed {self.pushed_bytes}, "
                f"pulled {self.pulled_bytes}, cache-hit rate {self.cache_hit_rate:.4f}>")

    def _repr_html_(self) -> str:
        rows = [(b.position, b.label, short_digest(b.digest), b.layers,
                 "-" if b.first_diverging is None else b.first_diverging, len(b.rebuilt),
                 format_size(b.pushed_bytes), format_size(b.pulled_bytes),
                 percent(b.cache_hit_rate), format_size(b.total_pushed_bytes))
                for b in self.builds]
        return html_block("Build-to-build reuse", self.summary(), html_table(
            ["#", "build", "digest", "layers", "diverges at", "rebuilt", "pushed", "pulled",
             "cache hits", "pushed so far"], rows, "rllrrrrrrr"))


def build_reuse(images: Sequence[Image]) -> ReuseResult:
    """Build-to-build reuse of ``images`` (oldest build first; see the module
    docstring). Raises :class:`ReuseInputError` for fewer than two images."""
    images = tuple(images)
    if len(images) < 2:
        raise ReuseInputError(f"build reuse needs at least two builds, got {len(images)}")
    labels = image_labels(images)
    builds = []
    total_pushed = total_pulled = reused_so_far = layers_so_far = 0
    for position, (image, label, m) in enumerate(
            zip(images, labels, measure([slots_of(i) for i in images]))):
        n = len(image.layers)
        total_pushed += m.pushed_bytes
        total_pulled += m.pulled_bytes
        if position > 0:  # the first build has no cache to hit
            reused_so_far += m.reused
            layers_so_far += n
        builds.append(BuildReuse(
            position, label, image.reference, str(image.digest), image.config.created, n,
            image.size, None if position == 0 or m.reused == n else m.reused,
            m.reused, m.pushed, m.pushed_bytes, m.pulled_bytes, total_pushed, total_pulled,
            reused_so_far / layers_so_far if layers_so_far else 0.0))
    return ReuseResult(tuple(builds), images)
