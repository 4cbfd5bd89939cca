"""ipywidgets explorers: an image explorer, a push simulator, a registry dashboard.

Each is a small class holding its widgets and its current state (the image, the
simulation result, the figure, the counters) as attributes, so it can be driven from code
and tested without a browser; ``display(obj)`` (or leaving it last in a cell) shows it.
They only call the library: open_image / list_images, simulate, push, the registry log.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Sequence

import ipywidgets as w

from .._html import html_card, html_table
from ..units import format_duration, format_size
from . import figures
from .frames import image_files_frame

__all__ = ["ImageExplorer", "PushSimulator", "RegistryDashboard", "image_explorer",
           "push_simulator", "registry_dashboard", "sample_references"]

MERGED = "merged filesystem"


def _show(output: w.Output, obj: Any) -> None:
    """Replace what ``output`` shows with a plotly figure (its mime bundle, set directly:
    displaying the figure would print it into the running cell instead)."""
    try:
        bundle = obj._repr_mimebundle_()
    except Exception:  # noqa: BLE001 - no renderer available: keep the state only
        return
    output.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)


class _Widget:
    widget: w.Widget

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def sample_references(samples: str | Path | None = None) -> list[str]:
    """Image references for the sample images: every archive tag and layout ref."""
    from ..sources import list_images
    from ..samples import samples_dir

    root = Path(samples) if samples else samples_dir()
    refs: list[str] = []
    for archive in sorted((root / "docker-archive").glob("*.tar")):
        refs += [s.reference for s in list_images(f"docker-archive:{archive}")]
    for layout in sorted(p for p in (root / "oci").glob("*") if p.is_dir()):
        refs += [s.reference for s in list_images(f"oci:{layout}")]
    return refs


class ImageExplorer(_Widget):
    """Pick an image (archive, layout or registry tag); see its layers and browse the files
    of one layer or of the merged filesystem."""

    def __init__(self, references: Sequence[str], max_files: int = 300) -> None:
        self.max_files = max_files
        self.image: Any = None
        self.files: Any = None  # the listed files (a DataFrame)
        self.reference = w.Dropdown(options=list(references), description="image",
                                    layout=w.Layout(width="95%"))
        self.layer = w.Dropdown(description="files of", options=[MERGED])
        self.filter = w.Text(description="path", placeholder="substring filter")
        self.summary = w.HTML()
        self.listing = w.HTML()
        self.plot = w.Output()
        self.reference.observe(lambda _: self.load(), "value")
        self.layer.observe(lambda _: self.list_files(), "value")
        self.filter.observe(lambda _: self.list_files(), "value")
        self.widget = w.VBox([self.reference, self.summary, self.plot,
                              w.HBox([self.layer, self.filter]), self.listing])
        if references:
            self.load()

    def load(self) -> None:
        """Open the chosen reference and refresh everything."""
        from ..sources import open_image

        self.image = open_image(self.reference.value)
        self.summary.value = self.image._repr_html_()
        options = [MERGED] + [f"layer {n}: {str(layer.diff_id or layer.digest)[7:19]}"
                              for n, layer in enumerate(self.image.layers, 1)]
        with self.layer.hold_trait_notifications():
            self.layer.options = options
            self.layer.value = MERGED
        self.figure = figures.layer_sizes_figure([self.image], title=None)
        _show(self.plot, self.figure)
        self.list_files()

    def list_files(self) -> None:
        """List the files of the chosen layer (or the merged filesystem), filtered."""
        if self.image is None:
            return
        if self.layer.value == MERGED:
            frame = image_files_frame(self.image, merged=True)
        else:
            position = int(self.layer.value.split(":")[0].split()[1])
            frame = image_files_frame(self.image, merged=False)
            frame = frame[frame["layer"] == position]
        if self.filter.value:
            frame = frame[frame["path"].str.contains(self.filter.value, regex=False)]
        self.files = frame.reset_index(drop=True)
        self.listing.value = html_card(
            f"{len(frame)} files, {format_size(int(frame['size'].sum()))}", None,
            frame, columns=["path", "size", "layer", "type"], max_rows=self.max_files)


def image_explorer(references: Sequence[str] | None = None) -> ImageExplorer:
    """An :class:`ImageExplorer` over ``references`` (default: the sample images)."""
    return ImageExplorer(list(references) if references is not None else sample_references())


class PushSimulator(_Widget):
    """Sliders for bandwidth, RTT, workers, compression level, registry cache and layer
    count; every change re-runs the simulation and redraws the timeline and totals."""

    def __init__(self, source: Any, profile: str = "docker", **fixed: Any) -> None:
        from ..pusher.profiles import PROFILES
        from ..simulator.simulation import as_layers

        self.layers = as_layers(source)
        self.fixed = fixed
        self.result: Any = None
        self.figure: Any = None
        style = {"description_width": "110px"}
        wide = w.Layout(width="420px")
        self.profile = w.Dropdown(options=list(PROFILES), value=profile, description="profile",
                                  style=style)
        self.bandwidth = w.FloatLogSlider(value=100, base=10, min=0, max=4, step=0.05,
                                          description="bandwidth Mbit/s", style=style, layout=wide)
        self.rtt = w.FloatSlider(value=2, min=0, max=200, step=1, description="RTT ms",
                                 style=style, layout=wide)
        self.workers = w.IntSlider(value=5, min=1, max=16, description="workers", style=style,
                                   layout=wide)
        self.level = w.IntSlider(value=6, min=1, max=9, description="gzip level", style=style,
                                 layout=wide)
        self.cache = w.Checkbox(value=True, description="registry cache", style=style)
        self.layer_count = w.IntSlider(value=len(self.layers), min=1,
                                       max=max(48, len(self.layers)), description="layers",
                                       style=style, layout=wide)
        self.totals = w.HTML()
        self.plot = w.Output()
        controls = [self.profile, self.bandwidth, self.rtt, self.workers, self.level,
                    self.cache, self.layer_count]
        for control in controls:
            control.observe(lambda _: self.update(), "value")
        self.widget = w.VBox([w.HBox([w.VBox(controls[:4]), w.VBox(controls[4:] + [self.totals])]),
                              self.plot])
        self.update()

    def settings(self) -> dict[str, Any]:
        """The scenario the controls describe, as :func:`layerlab.simulate` arguments."""
        from ..pusher.profiles import get_profile
        from ..simulator.sweep import relayer

        prof = get_profile(self.profile.value).with_options(concurrency=self.workers.value,
                                                            level=self.level.value)
        layers = (self.layers if self.layer_count.value == len(self.layers)
                  else relayer(self.layers, self.layer_count.value))
        return {"source": layers, "profile": prof, "bandwidth": f"{self.bandwidth.value} Mbit/s",
                "rtt": f"{self.rtt.value} ms", "cache": self.cache.value, **self.fixed}

    def update(self) -> None:
        """Simulate the current settings; redraw totals and timeline."""
        from ..simulator import simulate

        settings = self.settings()
        self.result = simulate(settings.pop("source"), settings.pop("profile"), **settings)
        r = self.result
        self.totals.value = html_card(
            f"simulated push: {format_duration(r.total)}",
            {"sent": format_size(r.bytes_sent), "requests": r.requests,
             "dominated by": r.dominant_phase})
        self.figure = figures.push_timeline_figure(simulated=r, title=None)
        _show(self.plot, self.figure)


def push_simulator(source: Any, profile: str = "docker", **fixed: Any) -> PushSimulator:
    """A :class:`PushSimulator` for an Image, LayerSpecs or layer sizes."""
    return PushSimulator(source, profile, **fixed)


class RegistryDashboard(_Widget):
    """A local registry's requests as they happen: counters, the latest requests and a
    timeline, refreshed from the registry's log (at most every ``interval`` seconds), with
    a button that pushes a chosen image in the background."""

    def __init__(self, registry: Any, references: Sequence[str] = (), interval: float = 0.25,
                 recent: int = 12) -> None:
        self.registry = registry
        self.interval = interval
        self.recent = recent
        self.counters: dict[str, Any] = {}
        self.figure: Any = None
        self.last_push: Any = None
        self._last_refresh = 0.0
        self._lock = threading.Lock()
        self.summary = w.HTML()
        self.table = w.HTML()
        self.plot = w.Output()
        self.source = w.Dropdown(options=list(references), description="image",
                                 layout=w.Layout(width="60%"))
        self.profile = w.Dropdown(options=["serial", "docker-1.7", "docker", "fast"],
                                  value="fast", description="profile")
        self.button = w.Button(description="push", button_style="primary")
        self.button.on_click(lambda _: self.push_in_background())
        self.widget = w.VBox([w.HBox([self.source, self.profile, self.button]), self.summary,
                              self.table, self.plot])
        self._unsubscribe = registry.log.subscribe(self._on_request)
        self.refresh()

    def _on_request(self, record: Any) -> None:
        now = time.monotonic()
        if now - self._last_refresh >= self.interval:
            self.refresh()

    def refresh(self) -> None:
        """Redraw from the registry log now."""
        with self._lock:
            self._last_refresh = time.monotonic()
            log = self.registry.log
            self.counters = log.counters()
            c = self.counters
            self.summary.value = html_card(
                f"registry {self.registry.url}",
                {"requests": c["requests"], "errors": c["errors"], "misses": c["misses"],
                 "received": format_size(c["bytes_in"]), "sent": format_size(c["bytes_out"])})
            rows = [{"method": r.method, "kind": r.kind, "status": r.status,
                     "bytes_in": r.bytes_in, "duration": format_duration(r.duration),
                     "path": r.path[:70]} for r in log.entries[-self.recent:]]
            self.table.value = html_table(rows[::-1]) if rows else ""
            self.figure = figures.requests_figure(log.to_frame(), title=None)
            _show(self.plot, self.figure)

    def push_in_background(self, reference: str | None = None, destination: str | None = None,
                           profile: str | None = None) -> threading.Thread:
        """Push ``reference`` (default: the chosen one) to this registry in a thread; the
        dashboard follows the requests live. ``self.last_push`` gets the result."""
        from ..pusher import push

        ref = reference or self.source.value
        dest = destination or f"{self.registry.host}/dashboard/{_repository_name(ref)}:latest"

        def run() -> None:
            self.last_push = push(ref, dest, profile=profile or self.profile.value,
                                  progress=False, cache=False)
            self.refresh()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        """Stop following the registry log."""
        self._unsubscribe()


def _repository_name(reference: str) -> str:
    """A valid repository name from an image reference (``.../app24.tar`` -> ``app24``)."""
    import re

    tail = str(reference).rstrip("/").rsplit("/", 1)[-1]
    tail = re.sub(r"\.tar$", "", tail.replace(".tar:", "-"))
    return re.sub(r"[^a-z0-9]+", "-", tail.lower()).strip("-") or "image"


def registry_dashboard(registry: Any, references: Sequence[str] | None = None) -> RegistryDashboard:
    """A :class:`RegistryDashboard` for a running :class:`~layerlab.LocalRegistry`."""
    return RegistryDashboard(registry, list(references) if references is not None
                             else sample_references())
