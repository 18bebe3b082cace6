"""Tick marks for a log-scale error axis in percent, labelled where the data is.

Used by :mod:`mnist_lab.plots` for every error-rate axis (the error curves, sweep
and ``compare`` overlays), so that the 1-3 % region, where runs differ, is read
off the axis.
"""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import Locator, LogLocator, MaxNLocator


class ErrorTicks(Locator):
    """Labelled ticks for a log-scale error axis in percent, readable at any range.

    Mantissas 1-2-3-5 per decade (1, 2, 3, 5, 10, 20 %...), or 1-2-5, or decades
    only, whichever is the densest whose closest labels stay 1.5 font heights
    apart (``axis.get_tick_space()`` counts labels two font heights apart); the
    ticks come from ``LogLocator``. Where that leaves fewer than 3 ticks in view
    (a range narrower than about half a decade, e.g. 5-9 %), ``AutoLocator``'s
    linear 1-2-2.5-5 steps instead (5, 5.5, 6 ... 9 %), as ``LogLocator`` itself
    does when it finds one tick or none; so narrow a log axis is nearly linear.
    """

    # Labelled mantissas per decade, densest first, and their closest gap in decades.
    MANTISSAS = (((1.0, 2.0, 3.0, 5.0), np.log10(3 / 2)), ((1.0, 2.0, 5.0), np.log10(2)),
                 ((1.0,), 1.0))

    def __call__(self):
        return self.tick_values(*self.axis.get_view_interval())

    def tick_values(self, vmin, vmax):
        vmin, vmax = sorted((vmin, vmax))
        decades = np.log10(vmax / vmin)
        room = max(self.axis.get_tick_space() if self.axis else 9, 2)
        # The axis is room * 2 font heights long: gap / decades of it >= 1.5 font heights.
        subs = next((subs for subs, gap in self.MANTISSAS if gap * room >= 0.75 * decades), (1.0,))
        ticks = LogLocator(subs=subs, numticks=room).tick_values(vmin, vmax)
        if ((vmin <= ticks) & (ticks <= vmax)).sum() >= 3:
            return ticks
        linear = MaxNLocator(nbins=9, steps=[1, 2, 2.5, 5, 10], min_n_ticks=3)  # AutoLocator's
        return linear.tick_values(vmin, vmax)


def percent(value: float, _pos=None) -> str:
    """A tick label in percent with the decimals it needs: 1%, 0.5%, 1.5%, 100%."""
    return f"{value:.6g}%"
