"""Figures that redraw in place, and sliders wired to them: the display layer of every chapter's widgets.

:func:`live_figure` is the one mechanism behind the slider widgets of chapters 02, 04, 05, 06 and 08; a widget
draws once with its default values as an ordinary cell output (a headless run keeps the figure) and redraws
that same output when a control moves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

import matplotlib.pyplot as plt
from matplotlib.figure import Figure


class FigureOutput:
    """A figure shown as a normal cell output and updated in place (``display_id``) on every redraw."""

    def __init__(self, draw: Callable[..., Figure], display: bool = True) -> None:
        self.draw = draw
        self.display = display
        self.handle = None
        self.figure: Optional[Figure] = None
        self.draws = 0

    def update(self, **kwargs: Any) -> Figure:
        fig = self.draw(**kwargs)
        self.figure = fig
        self.draws += 1
        if self.display:
            from IPython.display import display

            if self.handle is None:
                self.handle = display(fig, display_id=True)
            else:
                self.handle.update(fig)
        plt.close(fig)  # shown through the display handle only (no duplicate inline copy)
        return fig


@dataclass
class Widget:
    """What the ``*_widget`` functions return: the controls, the figure output and the values used."""

    controls: Any
    output: FigureOutput
    values: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def figure(self) -> Optional[Figure]:
        return self.output.figure

    def _ipython_display_(self) -> None:  # re-displaying shows the controls only (the figure is above)
        from IPython.display import display

        display(self.controls)


def show(controls: Any, display: bool) -> None:
    if display:
        from IPython.display import display as ipy_display

        ipy_display(controls)


def live_figure(
    controls: Mapping[str, Any],
    draw: Callable[..., Figure],
    *,
    display: bool = True,
    wrap: bool = False,
    state: Optional[dict[str, Any]] = None,
) -> Widget:
    """Wire sliders to a figure: every change of a control redraws ``draw(**values)`` in place.

    The one mechanism behind the chapters' slider widgets (02, 04-06, 08): it shows the controls, draws once
    with their current values (so a headless run keeps the figure) and returns the :class:`Widget`.
    """
    import ipywidgets as w

    for c in controls.values():
        c.continuous_update = False
    layout = w.Layout(flex_flow="row wrap") if wrap else w.Layout()
    output = FigureOutput(draw, display=display)
    widget = Widget(
        controls=w.HBox(list(controls.values()), layout=layout),
        output=output,
        values={k: c.value for k, c in controls.items()},
        state=state if state is not None else {},
    )

    def redraw(_change: Any = None) -> None:
        widget.values = {k: c.value for k, c in controls.items()}
        output.update(**widget.values)

    for c in controls.values():
        c.observe(redraw, names="value")
    show(widget.controls, display)
    redraw()
    return widget


def check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name}={value!r} is out of the slider's range; allowed {low}..{high}")


__all__ = ["FigureOutput", "Widget", "live_figure", "show", "check_range"]
