"""The house look shared by every layerlab figure."""

from __future__ import annotations

import plotly.graph_objects as go

__all__ = ["style"]


def style(fig: go.Figure, title: str | None = None, height: int | None = None) -> go.Figure:
    """White template, compact margins, title top-left, full names in hover labels."""
    fig.update_layout(template="plotly_white",
                      margin=dict(l=10, r=10, t=50 if title else 20, b=10),
                      font=dict(size=12), hoverlabel=dict(namelength=-1))
    if title:
        fig.update_layout(title=dict(text=title, x=0.01, xanchor="left"))
    if height:
        fig.update_layout(height=height)
    return fig
