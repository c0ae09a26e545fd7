"""Figure style: sizes in inches matched to the book's text column, fonts of at least
8 pt at the size a figure is shown, one colour per workload (Okabe-Ito, colour-blind safe).

The HTML book's text column is 676 CSS px wide in a 1280 px window (96 px per inch:
7.04 in) and the PDF's is 7.27 in (A4, 0.5 in margins).  A figure is drawn
:data:`COLUMN_WIDTH_IN` wide and saved cropped to its content with a
:data:`PAD_IN` margin, so its PNG is at most 7.04 in wide and is shown at (at least) its own
size in both: its point sizes are the sizes the reader sees (``make check`` measures this
from the metadata :func:`figure_metadata` writes into every PNG).  :func:`fit` brings a
wider figure to that width (its fonts keep their point size, so they grow relative to the
drawing) and lifts any smaller text to :data:`MIN_FONT_PT`.  :func:`install` applies the rc
settings and makes every figure an IPython kernel displays go through :func:`fit` first.
"""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.layout_engine
from matplotlib.figure import Figure
from matplotlib.text import Text

COLUMN_WIDTH_IN = 6.9  # drawn width: the PNG, with its PAD_IN margins, fits the 7.04 in (676 px) HTML column
PAD_IN = 0.03  # margin of the saved (tight-cropped) PNG
MIN_FONT_PT = 8.0  # smallest text at the size a figure is shown
DISPLAY_DPI = 144  # pixels per inch of displayed PNGs (sharp when the browser scales them)
MIN_HEIGHT_IN = 4.2  # a wide figure brought to the column keeps at least this height (or its own)

# Okabe-Ito (Okabe & Ito 2008), colour-blind safe: one colour per workload everywhere
OKABE_ITO = {"blue": "#0072B2", "orange": "#E69F00", "green": "#009E73", "purple": "#CC79A7",
             "vermillion": "#D55E00", "sky": "#56B4E9", "yellow": "#F0E442", "black": "#000000"}
WORKLOAD_COLORS = {"chat": OKABE_ITO["blue"], "image": OKABE_ITO["orange"], "code_review": OKABE_ITO["green"],
                   "batch_training": OKABE_ITO["purple"]}
WORKLOAD_LABELS = {"chat": "chat", "image": "image", "code_review": "code review",
                   "batch_training": "batch training"}
ACCENT = OKABE_ITO["vermillion"]  # limits, saturation marks
OTHER = "#555555"

RC = {
    "figure.figsize": (COLUMN_WIDTH_IN, 3.6),
    "figure.dpi": DISPLAY_DPI,
    "savefig.dpi": 200,
    "savefig.pad_inches": PAD_IN,
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.title_fontsize": 8.5,
    "figure.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=[OKABE_ITO[k] for k in
                                         ("blue", "orange", "green", "purple", "vermillion", "sky", "black")]),
    "lines.linewidth": 1.6,
    "legend.frameon": False,
}


def color(workload: str) -> str:
    """The workload's colour (the same on every figure)."""
    return WORKLOAD_COLORS.get(workload, OTHER)


def apply() -> None:
    """Set the house rc parameters (fonts, sizes, colour cycle) for new figures."""
    mpl.rcParams.update(RC)


def texts(fig: Figure) -> list[Text]:
    """Every visible, non-empty text of ``fig`` (tick labels, labels, titles, legends, annotations)."""
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def smallest_font(fig: Figure) -> float:
    """Smallest font size (pt) of the visible text of ``fig``, at its current size."""
    sizes = [t.get_fontsize() for t in texts(fig)]
    return min(sizes) if sizes else float("inf")


def reflow(fig: Figure, per_row: int = 2) -> int:
    """Re-arrange a one-row figure of more than ``per_row`` panels into rows of ``per_row``
    (2: an odd last panel spans the row; 1: panels stacked); returns the number of rows
    (0: left as it was).  Twin axes move with their panel; a figure with axes outside its
    grid (colour bars) is left alone."""
    import math

    axes = fig.axes
    specs = [a.get_subplotspec() for a in axes]
    if not axes or any(sp is None for sp in specs):
        return 0
    grids = {id(sp.get_gridspec()) for sp in specs}
    nrows, ncols = specs[0].get_gridspec().get_geometry()
    if len(grids) != 1 or nrows != 1 or ncols <= per_row:
        return 0
    if any(sp.colspan.stop - sp.colspan.start != 1 for sp in specs):
        return 0
    rows = math.ceil(ncols / per_row)
    new = fig.add_gridspec(rows, per_row)
    for a, sp in zip(axes, specs):
        c = sp.colspan.start
        r, k = divmod(c, per_row)
        a.set_subplotspec(new[r, :] if (c == ncols - 1 and ncols % per_row) else new[r, k])
    return rows


def panel_letters(axes, start: str = "a") -> list[str]:
    """Prefix each panel's title with a letter, (a), (b), ... in the order given, so that a
    caption can name panels by letter whatever :func:`fit` does to the layout (a one-row
    figure may be re-laid in rows of two, or stacked).  A panel without a title gets the
    letter alone, at its left.  Returns the letters used (without brackets)."""
    letters = []
    for i, ax in enumerate(axes):
        letter = chr(ord(start) + i)
        title = ax.get_title()
        if title:  # keep the title's own font size and place
            ax.title.set_text(f"({letter}) {title}")
        else:
            ax.set_title(f"({letter})", loc="left")
        letters.append(letter)
    return letters


CRAMPED_IN = 1.6  # a panel narrower than this after layout is stacked instead (one-row figures)


def _cramped(fig: Figure) -> bool:
    return any(a.get_position().width * fig.get_figwidth() < CRAMPED_IN for a in fig.axes
               if a.get_subplotspec() is not None)


def fit(fig: Figure, width: float = COLUMN_WIDTH_IN) -> Figure:
    """Bring ``fig`` to the text column: a one-row figure of three or more panels is
    re-arranged in rows of two (:func:`reflow`); a wider figure is narrowed to ``width``
    inches (height scaled with it, but kept at least :data:`MIN_HEIGHT_IN` where it was
    taller); every text smaller than :data:`MIN_FONT_PT` is lifted to it; a figure without a
    layout engine gets matplotlib's constrained layout so the larger text does not collide
    (and none where that layout cannot place the panels).  The layout found is then kept
    (``fig._tf_layout``: ``"constrained"`` or ``"none"``), so later draws do not redo it:
    change the figure before fitting it (or lay it out again with
    ``fig.set_layout_engine("constrained")``)."""

    if getattr(fig, "_tf_fitted", False):
        return fig
    w, h = fig.get_size_inches()
    rows = reflow(fig) if w > width * 1.4 else 0
    if rows:
        fig.set_size_inches(width, rows * min(max(h * width / w * 2, MIN_HEIGHT_IN * 0.75), 3.4))
    elif w > width * 1.01:
        k = width / w
        fig.set_size_inches(width, max(h * k, min(h, MIN_HEIGHT_IN)))
    for ax in fig.axes:  # (the tick labels of the current ticks exist before any draw)
        for which, labels in (("x", ax.get_xticklabels()), ("y", ax.get_yticklabels())):
            if any(t.get_fontsize() < MIN_FONT_PT for t in labels):
                ax.tick_params(axis=which, labelsize=MIN_FONT_PT)
    for t in texts(fig):
        if t.get_fontsize() < MIN_FONT_PT:
            t.set_fontsize(MIN_FONT_PT)
    if fig.get_layout_engine() is None:
        try:
            fig.set_layout_engine("constrained")
        except RuntimeError:  # a colorbar made under another engine: leave the layout alone
            pass
    fig.set_dpi(DISPLAY_DPI)
    collapses = None  # whether constrained layout fails at the current size (None: not judged yet)
    if isinstance(fig.get_layout_engine(), mpl.layout_engine.ConstrainedLayoutEngine) and w > width * 1.01:
        collapses = _collapses(fig)
        if not collapses and _cramped(fig):
            fh = fig.get_size_inches()[1]
            rows = reflow(fig, per_row=1)
            if rows:
                fig.set_size_inches(width, rows * min(max(fh * 0.8, MIN_HEIGHT_IN * 0.75), 3.2))
                collapses = None
    if isinstance(fig.get_layout_engine(), mpl.layout_engine.ConstrainedLayoutEngine):
        # where the panels do not fit at this width, widen in steps (shown a little smaller)
        # up to the figure's own width, and give up the layout engine only after that
        fw, fh = fig.get_size_inches()
        for k in (1.0, 1.25, 1.5, max(w / fw, 1.0)):
            if k != 1.0 or collapses is None:  # (at k = 1 the size is the one judged above)
                fig.set_size_inches(fw * k, fh * k)
                collapses = _collapses(fig)
            if not collapses:
                break
        else:
            fig.set_layout_engine("none")
    fig._tf_layout = "none"
    if isinstance(fig.get_layout_engine(), mpl.layout_engine.ConstrainedLayoutEngine):
        # the layout is settled (the last _collapses laid it out at this size): keep it, so
        # that each later draw (the page's PNG, the saved PNG and PDF) does not redo it
        fig._tf_layout = "constrained"
        fig.set_layout_engine("none")
    fig._tf_fitted = True
    return fig


def _collapses(fig: Figure) -> bool:
    """True if constrained layout cannot place ``fig``'s axes (it warns and gives up)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            for _ in range(2):  # constrained layout starts from the last positions: judge the second pass
                fig.draw_without_rendering()
        except (ZeroDivisionError, ValueError):  # e.g. colour bars squeezed to no height
            return True
    return any("collapsed" in str(c.message) for c in caught)


FIGURE_META_KEY = "tokenflow"  # PNG text chunk: what `make check` needs to judge displayed text size


def figure_metadata(fig: Figure, dpi: float) -> dict[str, str]:
    """The PNG text chunk written with every book figure: its smallest font (pt, at the
    figure's drawn size) and the dpi it is rasterised at.  A PNG ``w`` pixels wide is then
    ``w / dpi`` inches as drawn, and a reader who sees it ``s`` CSS pixels wide (96 per inch)
    sees its smallest text at ``min_font_pt * (s / 96) / (w / dpi)`` pt
    (``tools/check_book.py``)."""
    import json

    return {FIGURE_META_KEY: json.dumps({"min_font_pt": round(float(smallest_font(fig)), 3),
                                         "dpi": float(dpi)})}


def _fitting(func, fmt: str | None = None):
    """``func`` (IPython's ``print_figure``, or a formatter made from it) with every figure
    :func:`fit` first, and the PNG output carrying :func:`figure_metadata`.  ``fmt``: the
    format a formatter writes (None: read from the call, as ``print_figure`` takes it)."""
    if getattr(func, "_tf_fit", False):
        return func

    def fitted(fig, *args, **kwargs):
        if isinstance(fig, Figure):
            fit(fig)
            f = fmt or (args[0] if args else kwargs.get("fmt", "png"))
            if f in ("png", "retina") and "metadata" not in kwargs:
                dpi = float(kwargs.get("dpi") or fig.dpi) * (2 if f == "retina" else 1)
                kwargs["metadata"] = figure_metadata(fig, dpi)
        return func(fig, *args, **kwargs)
    fitted._tf_fit = True
    return fitted


def install(ip=None) -> bool:
    """Apply :data:`RC` and make the running IPython kernel :func:`fit` every figure it
    displays (inline backend); False when not in IPython."""
    apply()
    try:
        from IPython import get_ipython
        from IPython.core import pylabtools
    except ImportError:  # pragma: no cover
        return False
    ip = ip or get_ipython()
    if ip is None:
        return False
    # where constrained layout cannot place the panels, fit() has already switched it off; the
    # warning of a later re-layout (e.g. bbox_inches="tight") is not a problem of the page
    import warnings

    warnings.filterwarnings("ignore", message="constrained_layout not applied", category=UserWarning)
    # formatters registered later (a later %matplotlib inline) use the patched print_figure
    pylabtools.print_figure = _fitting(pylabtools.print_figure)
    for mime in ("image/png", "image/svg+xml", "image/jpeg", "application/pdf", "image/retina"):
        f = ip.display_formatter.formatters.get(mime)
        if f is None:
            continue
        try:
            current = f.lookup_by_type(Figure)
        except KeyError:
            continue
        f.for_type(Figure, _fitting(current, fmt="png" if mime == "image/png" else "other"))
    return True
