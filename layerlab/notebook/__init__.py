"""Notebook faces of layerlab: plotly figures, ipywidgets explorers, an HTML report.

Imported lazily (plotly and ipywidgets load only when a name is used):

* :mod:`.figures` - figure functions over plain DataFrames or layerlab results;
* :mod:`.widgets` - the image explorer, the push simulator, the registry dashboard;
* :mod:`.report` - :func:`write_report`, one self-contained HTML file (plotly.js inline);
* :mod:`.colors` - one stable colour per layer across all of them;
* :mod:`.html` - the card/table helpers result objects use for ``_repr_html_``.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "layer_sizes_figure": "figures", "shared_heatmap_figure": "figures",
    "files_treemap_figure": "figures", "wasted_space_figure": "figures",
    "push_timeline_figure": "figures", "sweep_figure": "figures", "steps_figure": "figures",
    "requests_figure": "figures",
    "image_explorer": "widgets", "push_simulator": "widgets", "registry_dashboard": "widgets",
    "write_report": "report", "Report": "report",
    "layer_color": "colors",
}

__all__ = sorted(_EXPORTS) + ["setup"]

DEFAULT_RENDERER = "plotly_mimetype"
"""Figures go into notebooks as plotly's own JSON mime bundle: JupyterLab, VS Code and
nbclient render it offline (no CDN), and the notebook files stay small. Use
``setup("notebook_connected")`` for classic Notebook 6 with internet access."""


def setup(renderer: str | None = DEFAULT_RENDERER) -> None:
    """Prepare a notebook session: plotly's renderer and pandas display options.

    Call once at the top of a notebook: ``layerlab.notebook.setup()``.
    """
    import pandas as pd

    if renderer:
        import plotly.io as pio

        pio.renderers.default = renderer
    pd.set_option("display.max_colwidth", 80)
    pd.set_option("display.width", 120)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, extra=("setup",))
