"""Figures: one colour per workload everywhere, units on every axis, CONUS maps in a
Lambert conformal projection.  Functions take results (xarray), never solver objects.

Maps use the Natural Earth 1:110m layers (public domain) shipped inside the package
under ``tokenflow/data/naturalearth`` in cartopy's own layout; :func:`map_axes` points
cartopy at them, so maps look the same on every machine and never download anything.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.collections import PatchCollection
from matplotlib.patches import FancyArrowPatch, Patch, Wedge

# Okabe-Ito colour-blind-safe palette, one colour per workload
WORKLOAD_COLORS = {
    "chat": "#0072B2",
    "image": "#E69F00",
    "code_review": "#009E73",
    "batch_training": "#CC79A7",
}
WORKLOAD_LABELS = {"chat": "chat", "image": "image", "code_review": "code review",
                   "batch_training": "batch training"}
EXTENT = (-125.0, -66.5, 24.0, 50.0)


def color(workload: str) -> str:
    return WORKLOAD_COLORS.get(workload, "#555555")


def workload_legend(ax, workloads, **kw) -> None:
    handles = [Patch(color=color(w), label=WORKLOAD_LABELS.get(w, w)) for w in workloads]
    ax.legend(handles=handles, **{"fontsize": 8, "frameon": False, **kw})


def save(fig, folder: str | Path, name: str) -> list[Path]:
    """Save ``fig`` as PNG (150 dpi) and PDF in ``folder``; return the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.png", folder / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    return paths


# --------------------------------------------------------------------------- maps

MAP_DATA_DIR = Path(__file__).parent / "data" / "naturalearth"
# (category, Natural Earth name) of every layer the maps draw; all shipped at 1:110m
MAP_LAYERS = (("physical", "land"), ("physical", "coastline"),
              ("cultural", "admin_1_states_provinces_lakes"), ("cultural", "admin_0_boundary_lines_land"))


def map_layer_files() -> list[Path]:
    """The packaged shapefiles (``.shp``) behind the map layers, in cartopy's layout."""
    return [MAP_DATA_DIR / "shapefiles" / "natural_earth" / cat / f"ne_110m_{name}.shp" for cat, name in MAP_LAYERS]


def use_packaged_map_data() -> Path:
    """Point cartopy's ``pre_existing_data_dir`` at the packaged Natural Earth copy.

    Raises :class:`~tokenflow.errors.TokenflowError` if a layer file is missing (a broken
    install), instead of letting cartopy try a download.
    """
    import cartopy

    from .errors import TokenflowError

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
            ax.annotate(short_name(str(name)), xy[i], xytext=(4, 4), textcoords="offset points", fontsize=7,
                        zorder=5)


def short_name(node: str) -> str:
    """Display name of a node id, e.g. "n_virginia" -> "N. Virginia"."""
    return {"silicon_valley": "Silicon Valley", "n_virginia": "N. Virginia", "new_york": "New York",
            "los_angeles": "Los Angeles", "salt_lake_city": "Salt Lake City", "san_antonio": "San Antonio",
            "seattle_quincy": "Seattle/Quincy", "des_moines": "Des Moines"}.get(node, node.replace("_", " ").title())


def node_label(node: str, price_usd_per_kwh: float) -> str:
    return f"{short_name(node)} (${price_usd_per_kwh:.3f})"


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
