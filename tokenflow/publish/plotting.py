"""Figures: one colour per workload everywhere, units on every axis, CONUS maps in a
Lambert conformal projection.  Functions take results (xarray), never solver objects.

Maps use the Natural Earth 1:110m layers (public domain) shipped inside the package
under ``tokenflow/data/naturalearth`` in cartopy's own layout; :func:`map_axes` points
cartopy at them, so maps look the same on every machine and never download anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.collections import PatchCollection
from matplotlib.patches import FancyArrowPatch, Patch, Wedge

from ..scenarios.network import short_name  # noqa: F401  (re-exported; node names belong to the network)
from ..studies.cases import SATURATION
from .style import (  # noqa: F401  (re-exported)
    COLUMN_WIDTH_IN,
    WORKLOAD_COLORS,
    WORKLOAD_LABELS,
    color,
    figure_metadata,
    fit,
    panel_letters,
)

EXTENT = (-125.0, -66.5, 24.0, 50.0)


def workload_legend(ax, workloads, **kw) -> None:
    """Legend of workload colours.  On a figure it goes below every axes and its tick
    labels ("outside lower center", constrained layout), never over data or labels; a
    ``loc``/``bbox_to_anchor`` given for a figure is ignored for that reason."""
    from matplotlib.figure import Figure

    handles = [Patch(color=color(w), label=WORKLOAD_LABELS.get(w, w)) for w in workloads]
    if isinstance(ax, Figure):
        if ax.get_layout_engine() is None:
            try:
                ax.set_layout_engine("constrained")
            except RuntimeError:
                pass
        kw = {k: v for k, v in kw.items() if k not in {"loc", "bbox_to_anchor"}}
        kw["loc"] = "outside lower center"
        kw.setdefault("ncol", len(handles))
    ax.legend(handles=handles, **{"fontsize": 8, "frameon": False, **kw})


def save(fig, folder: str | Path, name: str) -> list[Path]:
    """Bring ``fig`` to the text column (:func:`tokenflow.publish.style.fit`), save it as PNG
    (200 dpi) and PDF in ``folder``; return the paths."""
    fit(fig)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.png", folder / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=200, bbox_inches="tight", metadata=figure_metadata(fig, 200))
    fig.savefig(paths[1], bbox_inches="tight")
    return paths


# --------------------------------------------------------------------------- maps

MAP_DATA_DIR = Path(__file__).parents[1] / "data" / "naturalearth"
# (category, Natural Earth name) of every layer the maps draw; all shipped at 1:110m
MAP_LAYERS = (("physical", "land"), ("physical", "coastline"),
              ("cultural", "admin_1_states_provinces_lakes"), ("cultural", "admin_0_boundary_lines_land"))


def map_layer_files() -> list[Path]:
    """The packaged shapefiles (``.shp``) behind the map layers, in cartopy's layout."""
    return [MAP_DATA_DIR / "shapefiles" / "natural_earth" / cat / f"ne_110m_{name}.shp" for cat, name in MAP_LAYERS]


def use_packaged_map_data() -> Path:
    """Point cartopy's ``pre_existing_data_dir`` at the packaged Natural Earth copy.

    Raises :class:`~tokenflow.core.errors.TokenflowError` if a layer file is missing (a broken
    install), instead of letting cartopy try a download.
    """
    import cartopy

    from ..core.errors import TokenflowError

    missing = [str(p) for p in map_layer_files() if not p.is_file()]
    if missing:
        raise TokenflowError(f"packaged map data missing (reinstall tokenflow): {', '.join(missing)}")
    cartopy.config["pre_existing_data_dir"] = str(MAP_DATA_DIR)
    return MAP_DATA_DIR


def map_axes(fig, rect_or_spec) -> tuple[plt.Axes, object]:
    """A CONUS map axes (Lambert conformal) with land, states, coastline and borders from
    the packaged Natural Earth 1:110m layers; returns (ax, data transform)."""
    import cartopy.crs as ccrs
    import cartopy.feature as cfeature

    use_packaged_map_data()
    proj = ccrs.LambertConformal(central_longitude=-96, central_latitude=39, standard_parallels=(33, 45))
    ax = fig.add_subplot(rect_or_spec, projection=proj)
    ax.set_extent(EXTENT, crs=ccrs.PlateCarree())
    ax.add_feature(cfeature.LAND.with_scale("110m"), facecolor="#f4f4f2", edgecolor="none")
    ax.add_feature(cfeature.STATES.with_scale("110m"), edgecolor="#b0b0b0", linewidth=0.4, facecolor="none")
    ax.add_feature(cfeature.COASTLINE.with_scale("110m"), edgecolor="#808080", linewidth=0.5)
    ax.add_feature(cfeature.BORDERS.with_scale("110m"), edgecolor="#808080", linewidth=0.5)
    return ax, ccrs.PlateCarree()


def _projected(ax, transform, lon, lat) -> np.ndarray:
    """Node positions in the axes' data coordinates."""
    if hasattr(ax, "projection"):
        pts = ax.projection.transform_points(transform, np.asarray(lon), np.asarray(lat))
        return pts[:, :2]
    return np.column_stack([lon, lat])


def _curve(ax, p, q, width, col, rad=0.18, alpha=0.8, zorder=3) -> None:
    ax.add_patch(FancyArrowPatch(p, q, connectionstyle=f"arc3,rad={rad}", arrowstyle="-|>",
                                 mutation_scale=6 + 2 * width, linewidth=width, color=col, alpha=alpha,
                                 zorder=zorder, shrinkA=4, shrinkB=4))


def dispatch_map(ax, transform, result, *, max_width: float = 6.0, top_per_workload: int | None = None,
                 pies: bool = False, size_scale: float | None = None, labels: bool = True) -> None:
    """Nodes sized by total processing (area), optionally as pies of the workload mix;
    inter-node transfers as curves coloured by workload, width proportional to volume."""
    ds = result.dataset
    xy = _projected(ax, transform, ds["lon"].values, ds["lat"].values)
    proc = ds["processing"]
    total = proc.sum("workload").values
    span = (ax.get_xlim()[1] - ax.get_xlim()[0])
    size_scale = size_scale or 0.045 * span / np.sqrt(max(total.max(), 1e-12))
    radii = size_scale * np.sqrt(total)
    tr = ds["transfers"]
    vmax = float(tr.where(tr["origin"] != tr["node"], 0).max())
    workloads = [str(w) for w in ds["workload"].values]
    for k, wk in enumerate(workloads):
        t = tr.sel(workload=wk).values.copy()
        np.fill_diagonal(t, 0.0)
        pairs = [(t[i, j], i, j) for i in range(t.shape[0]) for j in range(t.shape[1]) if t[i, j] > 1e-9 * max(vmax, 1)]
        pairs.sort(reverse=True)
        if top_per_workload:
            pairs = pairs[:top_per_workload]
        for v, i, j in pairs:
            w = 0.4 + max_width * v / vmax if vmax > 0 else 0.5
            _curve(ax, xy[i], xy[j], w, color(wk), rad=0.12 + 0.06 * k)
    patches, colors = [], []
    for i in range(len(xy)):
        if radii[i] <= 0:
            continue
        if pies:
            shares = proc.isel(node=i).values / total[i]
            start = 90.0
            for k, wk in enumerate(workloads):
                ang = 360.0 * shares[k]
                if ang > 0:
                    patches.append(Wedge(xy[i], radii[i], start, start + ang))
                    colors.append(color(wk))
                    start += ang
        else:
            patches.append(Wedge(xy[i], radii[i], 0, 360))
            colors.append("#4d4d4d")
    ax.add_collection(PatchCollection(patches, facecolors=colors, edgecolors="white", linewidths=0.5, zorder=4))
    idle = radii <= 0
    ax.scatter(xy[idle, 0], xy[idle, 1], s=12, marker="o", facecolors="none", edgecolors="#4d4d4d", zorder=4)
    if labels:
        for i, name in enumerate(ds["node"].values):
            ax.annotate(short_name(str(name)), xy[i], xytext=(4, 4), textcoords="offset points", fontsize=8,
                        zorder=5)


def node_label(node: str, price_usd_per_kwh: float) -> str:
    return f"{short_name(node)}\n(${price_usd_per_kwh:.3f})"


# --------------------------------------------------------------------------- bars and curves

def stacked_bars(ax, data: xr.DataArray, *, labels: list[str] | None = None, ylabel: str = "",
                 horizontal: bool = False) -> None:
    """Stacked bars over ``node`` split by ``workload`` with workload colours."""
    nodes = [str(n) for n in data["node"].values]
    base = np.zeros(len(nodes))
    for wk in data["workload"].values:
        vals = data.sel(workload=wk).values
        if horizontal:
            ax.barh(range(len(nodes)), vals, left=base, color=color(str(wk)), label=WORKLOAD_LABELS.get(str(wk)))
        else:
            ax.bar(range(len(nodes)), vals, bottom=base, color=color(str(wk)), label=WORKLOAD_LABELS.get(str(wk)))
        base = base + vals
    ticks = labels or [short_name(n) for n in nodes]
    if horizontal:
        ax.set_yticks(range(len(nodes)), ticks, fontsize=8)
        ax.set_xlabel(ylabel)
        ax.invert_yaxis()
    else:
        ax.set_xticks(range(len(nodes)), ticks, rotation=35, ha="right", fontsize=8)
        ax.set_ylabel(ylabel)
    ax.spines[["top", "right"]].set_visible(False)


def price_lines(ax, sweep: xr.Dataset, var: str = "mean_price", ylabel: str = "$/M tokens") -> None:
    for wk in sweep["workload"].values:
        ax.plot(sweep["demand_scale"], sweep[var].sel(workload=wk), color=color(str(wk)),
                label=WORKLOAD_LABELS.get(str(wk)), lw=1.8)
    ax.set_xlabel("demand scale (x base demand)")
    ax.set_ylabel(ylabel)
    ax.spines[["top", "right"]].set_visible(False)


def utilization_bars(ax, util: dict[str, np.ndarray], links: list[str], *, xlabel: str = "utilisation (%)") -> None:
    """Horizontal bars of link utilisation (%) for one or more variants."""
    n = len(util)
    h = 0.8 / n
    styles = [("#333333", None), ("#bbbbbb", "//")]
    for k, (label, vals) in enumerate(util.items()):
        col, hatch = styles[k % 2]
        ax.barh(np.arange(len(links)) + k * h, 100 * np.asarray(vals), height=h, color=col, hatch=hatch,
                label=label, edgecolor="white")
    ax.axvline(100, color="#D55E00", lw=1, ls="--")
    ax.set_yticks(np.arange(len(links)) + h * (n - 1) / 2, [link_label(lk) for lk in links], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.spines[["top", "right"]].set_visible(False)


def link_label(link: str) -> str:
    """Display name of a directed link, e.g. "a->b" -> "A → B"."""
    a, b = link.split("->")
    return f"{short_name(a)} → {short_name(b)}"


# --------------------------------------------------------------------------- the link map

# a link counts as saturated at >= SATURATION utilisation: claim C1's threshold (studies/cases.py)


def topology_note(scenario: str) -> str:
    """Where the packaged scenario's backbone comes from (its ``links_note``), for captions."""
    from importlib import resources

    import yaml

    from ..core.errors import TokenflowError

    path = resources.files("tokenflow") / "data" / f"{scenario}.yaml"
    if not path.is_file():
        raise TokenflowError(f"no packaged scenario {scenario!r} to read the topology note from")
    doc = yaml.safe_load(path.read_text())
    return str(doc.get("links_note", "backbone as listed in the scenario file's links section"))


def link_map(ax, transform, result, *, threshold: float = SATURATION, max_width: float = 6.0,
             cmap: str = "cividis", label_saturated: bool = True, node_labels: bool = True):
    """The backbone's directed links on a map: one curve per direction (a -> b bends to
    one side, b -> a to the other), coloured by utilisation (0-100 %), width growing with
    the link's congestion rent ($/GB, the capacity dual); links at or above ``threshold``
    utilisation get a vermillion halo and, with ``label_saturated``, a label "A → B".
    Returns the colour mapping (for a colour bar) and the saturated links."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    from ..core.errors import TokenflowError

    ds = result.dataset
    if "link" not in ds.dims or "link_utilization" not in ds or "congestion_rent" not in ds:
        raise TokenflowError("link_map needs a market result with link_utilization and congestion_rent by link")
    nodes = [str(n) for n in ds["node"].values]
    xy = dict(zip(nodes, _projected(ax, transform, ds["lon"].values, ds["lat"].values)))
    util = ds["link_utilization"].values.astype(float)
    rent = ds["congestion_rent"].values.astype(float)
    rmax = float(np.nanmax(rent)) if rent.size and np.nanmax(rent) > 0 else 0.0
    norm = Normalize(0.0, 100.0)
    cm = plt.get_cmap(cmap)
    saturated = []
    order = np.argsort(util)  # saturated links drawn last, on top
    for k in order:
        link = str(ds["link"].values[k])
        a, b = link.split("->")
        if a not in xy or b not in xy:
            raise TokenflowError(f"link {link!r} joins a node the result has no position for")
        width = 1.0 + (max_width * rent[k] / rmax if rmax > 0 else 0.0)
        sat = util[k] >= threshold
        style = f"arc3,rad={0.12}"
        if sat:
            saturated.append(link)
            ax.add_patch(FancyArrowPatch(xy[a], xy[b], connectionstyle=style, arrowstyle="-", linewidth=width + 4,
                                         color=style_accent(), alpha=0.55, zorder=3, shrinkA=5, shrinkB=5))
        ax.add_patch(FancyArrowPatch(xy[a], xy[b], connectionstyle=style, arrowstyle="-|>",
                                     mutation_scale=7 + width, linewidth=width, color=cm(norm(100 * util[k])),
                                     zorder=4, shrinkA=5, shrinkB=5))
    pts = np.array(list(xy.values()))
    ax.scatter(pts[:, 0], pts[:, 1], s=18, color="#333333", zorder=5, edgecolors="white", linewidths=0.6)
    if node_labels:
        for n, p in xy.items():
            ax.annotate(short_name(n), p, xytext=(4, -9), textcoords="offset points", fontsize=8, zorder=6,
                        color="#222222")
    if label_saturated:  # numbered marks on the curves; the numbers are keyed in the legend
        for i, link in enumerate(saturated, start=1):
            a, b = link.split("->")
            p, q = np.asarray(xy[a]), np.asarray(xy[b])
            d = q - p
            mid = (p + q) / 2 + 0.5 * 0.12 * np.array([d[1], -d[0]])  # arc3 curve midpoint
            ax.annotate(str(i), mid, fontsize=8, ha="center", va="center", zorder=7, color="white",
                        fontweight="bold", bbox={"boxstyle": "circle,pad=0.2", "fc": style_accent(), "ec": "white"})
    sm = ScalarMappable(norm=norm, cmap=cm)
    sm.set_array([])
    return sm, saturated


def style_accent() -> str:
    from .style import ACCENT

    return ACCENT


def link_map_figure(result, *, title: str | None = None, threshold: float = SATURATION, width: float | None = None):
    """A column-wide figure: :func:`link_map` on a CONUS map, a colour bar for utilisation
    and a key for line width (congestion rent) and the saturation halo.  Returns
    ``(fig, saturated links)``."""
    from matplotlib.lines import Line2D

    from .style import ACCENT, COLUMN_WIDTH_IN

    w = width or COLUMN_WIDTH_IN
    fig = plt.figure(figsize=(w, 0.62 * w), layout="constrained")
    ax, tr = map_axes(fig, 111)
    sm, sat = link_map(ax, tr, result, threshold=threshold)
    fig.colorbar(sm, ax=ax, orientation="horizontal", shrink=0.55, pad=0.02, aspect=40,
                 label="link utilisation (% of capacity, as the model counts traffic)")
    rent = result.dataset["congestion_rent"].values
    rmax = float(np.nanmax(rent)) if rent.size else 0.0
    handles = [Line2D([], [], color="#555555", lw=1.0, label="no congestion rent"),
               Line2D([], [], color="#555555", lw=7.0, label=f"rent {rmax:.3g} $/GB (largest)"),
               Line2D([], [], color=ACCENT, lw=6, alpha=0.55, label=f"saturated (≥ {100 * threshold:g} %)")]
    if rmax <= 0:
        handles = [handles[0], handles[2]]
    util = result.dataset["link_utilization"]
    keyed = [Line2D([], [], ls="", marker=f"${i}$", markersize=7, color=ACCENT,
                    label=f"{link_label(lk)} ({100 * float(util.sel(link=lk)):.1f} %)")
             for i, lk in enumerate(sat, start=1)]
    fig.legend(handles=handles, loc="outside upper center", ncol=len(handles), fontsize=8, frameon=False)
    if keyed:
        # three long labels side by side run past the column: two columns then
        ncol = min(len(keyed), 3 if sum(len(h.get_label()) for h in keyed[:3]) <= 80 else 2)
        fig.legend(handles=keyed, loc="outside lower center", ncol=ncol, fontsize=8,
                   frameon=False, title="saturated links", title_fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return fig, sat


# --------------------------------------------------------------------------- identifiability

OUTCOME_COLORS = {"holds": "#009E73", "fails": "#D55E00", "does not clear": "#C8C8C8"}
CHOICE_MARKERS = ("o", "^")  # first and second non-default value of a choice


def choice_claims(design, outcomes, choices, width: float = COLUMN_WIDTH_IN):
    """One column per choice set: above, a marker for each choice that differs from its
    default (``choices``: name -> values, the first the default; a second non-default value
    gets another marker); below, one coloured cell per claim (``outcomes``: the words of
    :data:`OUTCOME_COLORS`, as :func:`tokenflow.studies.identifiability.claim_outcomes` gives
    them).  ``design`` and ``outcomes`` share their index and column order (sort them
    first).  Drawn at ``width`` inches, text at 9 pt; legend below the axes."""
    from matplotlib.colors import ListedColormap
    from matplotlib.lines import Line2D

    names = list(choices)
    claims = list(outcomes.columns)
    n = len(design)
    words = {v: v.replace("_", " ") for vals in choices.values() for v in vals}
    short = {"cbre_colocation": "CBRE", "cushman_wakefield": "C&W"}
    rows = []
    for c in names:
        alts = list(choices[c])[1:]
        if len(alts) == 1:
            rows.append(f"{c.replace('_', ' ')}: {words[alts[0]]}")
        else:
            marks = {"o": "●", "^": "▲"}
            rows.append(f"{c.replace('_', ' ')}: " + "  ".join(
                f"{marks[CHOICE_MARKERS[i]]} {short.get(a, words[a])}" for i, a in enumerate(alts)))
    gap = 0.6
    y_claim = [len(names) + gap + i for i in range(len(claims))]
    fig, ax = plt.subplots(figsize=(width, 0.26 * (len(names) + len(claims) + gap) + 1.1), layout="constrained")
    for i, c in enumerate(names):
        alts = list(choices[c])[1:]
        for k, a in enumerate(alts):
            x = np.flatnonzero((design[c] == a).to_numpy())
            ax.scatter(x, np.full(len(x), i), marker=CHOICE_MARKERS[k], s=16, color="#333333", zorder=3)
        ax.axhline(i, color="#e6e6e6", lw=0.6, zorder=1)
    code = {w: j for j, w in enumerate(OUTCOME_COLORS)}
    grid = np.array([[code[w] for w in outcomes[c]] for c in claims], dtype=float)
    cmap = ListedColormap(list(OUTCOME_COLORS.values()))
    ax.pcolormesh(np.arange(n + 1) - 0.5, np.array([*y_claim, y_claim[-1] + 1]) - 0.5, grid, cmap=cmap,
                  vmin=-0.5, vmax=len(OUTCOME_COLORS) - 0.5, edgecolors="white", linewidth=0.4)
    ax.set_yticks([*range(len(names)), *y_claim], [*rows, *claims], fontsize=9)
    ax.set_ylim(y_claim[-1] + 0.5, -0.6)
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_xticks([])
    ax.set_xlabel(f"the {n} choice sets (one column each; no marker: the default)", fontsize=9)
    for s in ("top", "right", "left", "bottom"):
        ax.spines[s].set_visible(False)
    ax.tick_params(axis="y", length=0)
    handles = [Patch(color=col, label=w) for w, col in OUTCOME_COLORS.items()]
    handles.append(Line2D([], [], ls="", marker="o", color="#333333", markersize=4, label="differs from the default"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=9, frameon=False)
    return fig


def network_map(ax, transform, scenario, *, link_values: Mapping[str, float] | None = None,
                node_values: Mapping[str, float] | None = None, link_color: str = "#D55E00",
                node_color: str = "#0072B2", max_width: float = 7.0, max_size: float = 600.0,
                labels: bool = True) -> None:
    """Fibre links as straight lines (grey; coloured with width proportional to
    ``link_values`` where positive) and nodes as circles (area proportional to
    ``node_values`` where positive), on a map axes from :func:`map_axes` (the planner's maps)."""

    nodes = scenario.nodes
    lon, lat = nodes["lon"].to_numpy(float), nodes["lat"].to_numpy(float)
    if hasattr(ax, "projection"):
        xy = ax.projection.transform_points(transform, lon, lat)[:, :2]
    else:
        xy = np.column_stack([lon, lat])
    pos = {n: i for i, n in enumerate(nodes.index)}
    lv = {k: float(v) for k, v in (link_values or {}).items()}
    nv = np.array([float((node_values or {}).get(n, 0.0)) for n in nodes.index])
    # values below a millionth of the largest (solver noise) count as zero
    tiny = 1e-6 * max([abs(v) for v in lv.values()] + [float(np.abs(nv).max(initial=0.0))], default=0.0)
    lv = {k: (v if v > tiny else 0.0) for k, v in lv.items()}
    nv = np.where(nv > tiny, nv, 0.0)
    vmax = max([v for v in lv.values() if v > 0], default=0.0)
    for lk, row in scenario.links.iterrows():
        p, q = xy[pos[row["a"]]], xy[pos[row["b"]]]
        v = lv.get(str(lk), 0.0)
        if v > 0 and vmax > 0:
            ax.plot([p[0], q[0]], [p[1], q[1]], color=link_color, lw=0.8 + max_width * v / vmax, alpha=0.85,
                    zorder=3, solid_capstyle="round")
        else:
            ax.plot([p[0], q[0]], [p[1], q[1]], color="#9a9a9a", lw=0.8, zorder=2)
    nmax = nv.max(initial=0.0)
    sizes = np.where(nv > 0, 20 + max_size * nv / nmax if nmax > 0 else 20, 12)
    ax.scatter(xy[:, 0], xy[:, 1], s=sizes, c=np.where(nv > 0, node_color, "white"), edgecolors="#4d4d4d",
               linewidths=0.6, zorder=4)
    if labels:
        for n, i in pos.items():
            ax.annotate(short_name(str(n)), xy[i], xytext=(4, 4), textcoords="offset points", fontsize=8, zorder=5)
