"""Interactive map: one self-contained HTML fragment (inline SVG + inline JavaScript, no
CDN, no external file) showing a market result's nodes on a CONUS map; hovering or
focusing a node shows its locational prices by workload and their decomposition
(processing cost + compute rent + transfer cost + congestion rent, $/M tokens).

The basemap is drawn from the packaged Natural Earth 1:110m state layer in the same
Lambert conformal projection as :func:`tokenflow.publish.plotting.map_axes`.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from ..clearing.results import COMPONENTS, MarketResult
from .plotting import EXTENT, MAP_DATA_DIR, WORKLOAD_LABELS, color, short_name, use_packaged_map_data

COMPONENT_LABELS = {"processing": "processing", "compute_rent": "compute rent",
                    "transfer": "transfer", "congestion_rent": "congestion"}
WIDTH = 900  # SVG user units (px at 100 %)


def _projection():
    import cartopy.crs as ccrs

    return ccrs.LambertConformal(central_longitude=-96, central_latitude=39, standard_parallels=(33, 45)), \
        ccrs.PlateCarree()


def _frame(proj, geo) -> tuple[float, float, float, float]:
    """Projected bounding box (x0, x1, y0, y1) of the lon/lat EXTENT rectangle."""
    lo0, lo1, la0, la1 = EXTENT
    t = np.linspace(0, 1, 60)
    lon = np.r_[lo0 + (lo1 - lo0) * t, np.full_like(t, lo1), lo1 - (lo1 - lo0) * t, np.full_like(t, lo0)]
    lat = np.r_[np.full_like(t, la0), la0 + (la1 - la0) * t, np.full_like(t, la1), la1 - (la1 - la0) * t]
    p = proj.transform_points(geo, lon, lat)
    return float(p[:, 0].min()), float(p[:, 0].max()), float(p[:, 1].min()), float(p[:, 1].max())


def _state_paths(proj, geo, to_svg) -> list[str]:
    """SVG path data of the US state polygons (Natural Earth 1:110m, packaged)."""
    from cartopy.io import shapereader

    use_packaged_map_data()
    shp = MAP_DATA_DIR / "shapefiles" / "natural_earth" / "cultural" / "ne_110m_admin_1_states_provinces_lakes.shp"
    paths = []
    for geom in shapereader.Reader(str(shp)).geometries():
        polys = getattr(geom, "geoms", [geom])
        d = []
        for poly in polys:
            xy = np.asarray(poly.exterior.coords)
            p = proj.transform_points(geo, xy[:, 0], xy[:, 1])
            sx, sy = to_svg(p[:, 0], p[:, 1])
            d.append("M" + "L".join(f"{a:.1f},{b:.1f}" for a, b in zip(sx, sy)) + "Z")
        paths.append("".join(d))
    return paths


def _fmt(v: float) -> float | None:
    return None if not np.isfinite(v) else round(float(v), 6)


def node_data(result: MarketResult) -> list[dict]:
    """Per node: name, position (lon, lat), processing by workload (M tokens/h) and, per
    workload, the locational price and its decomposition ($/M tokens) with the serving node."""
    ds = result.dataset
    dec = result.price_decomposition()
    workloads = [str(w) for w in ds["workload"].values]
    out = []
    for i, node in enumerate(str(n) for n in ds["node"].values):
        prices = {}
        for wk in workloads:
            d = dec.sel(node=node, workload=wk)
            prices[wk] = {"price": _fmt(float(d["price"])),
                          **{c: _fmt(float(d[c])) for c in COMPONENTS},
                          "via": short_name(str(d["via"].values)) if str(d["via"].values) else ""}
        out.append({"node": node, "name": short_name(node), "lon": float(ds["lon"].values[i]),
                    "lat": float(ds["lat"].values[i]),
                    "processing": {wk: round(float(ds["processing"].sel(node=node, workload=wk)), 6)
                                   for wk in workloads},
                    "prices": prices})
    return out


def price_map_html(result: MarketResult, *, title: str = "", element_id: str = "tf-price-map") -> str:
    """Self-contained HTML (inline SVG + JS) of the hoverable price map of ``result``."""
    proj, geo = _projection()
    x0, x1, y0, y1 = _frame(proj, geo)
    height = WIDTH * (y1 - y0) / (x1 - x0)

    def to_svg(x, y):
        return (np.asarray(x) - x0) / (x1 - x0) * WIDTH, (y1 - np.asarray(y)) / (y1 - y0) * height

    nodes = node_data(result)
    workloads = list(nodes[0]["prices"]) if nodes else []
    lon = np.array([n["lon"] for n in nodes])
    lat = np.array([n["lat"] for n in nodes])
    p = proj.transform_points(geo, lon, lat)
    sx, sy = to_svg(p[:, 0], p[:, 1])
    totals = np.array([sum(n["processing"].values()) for n in nodes])
    rmax = 0.045 * WIDTH
    radii = rmax * np.sqrt(totals / max(totals.max(initial=0.0), 1e-12))

    parts = [f'<path d="{d}" class="tf-state"/>' for d in _state_paths(proj, geo, to_svg)]
    for i, n in enumerate(nodes):
        cx, cy, r = sx[i], sy[i], radii[i]
        label = html.escape(n["name"])
        g = [f'<g class="tf-node" tabindex="0" data-i="{i}" role="button" aria-label="{label}">']
        g.append(f"<title>{label}</title>")
        if r <= 0:
            g.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" class="tf-idle"/>')
        else:
            start = -np.pi / 2
            shares = [n["processing"][wk] / totals[i] for wk in workloads]
            if max(shares) > 1 - 1e-9:
                wk = workloads[int(np.argmax(shares))]
                g.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" fill="{color(wk)}"/>')
            else:
                for wk, sh in zip(workloads, shares):
                    if sh <= 0:
                        continue
                    end = start + 2 * np.pi * sh
                    big = 1 if sh > 0.5 else 0
                    ax_, ay_ = cx + r * np.cos(start), cy + r * np.sin(start)
                    bx, by = cx + r * np.cos(end), cy + r * np.sin(end)
                    g.append(f'<path d="M{cx:.1f},{cy:.1f}L{ax_:.1f},{ay_:.1f}A{r:.1f},{r:.1f} 0 {big} 1 '
                             f'{bx:.1f},{by:.1f}Z" fill="{color(wk)}"/>')
                    start = end
            g.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" class="tf-ring"/>')
        g.append(f'<text x="{cx:.1f}" y="{cy - max(r, 4) - 3:.1f}" class="tf-label">{label}</text></g>')
        parts.append("".join(g))
    legend = "".join(f'<span><i style="background:{color(wk)}"></i>{html.escape(WORKLOAD_LABELS.get(wk, wk))}'
                     f"</span>" for wk in workloads)
    data = json.dumps({"nodes": nodes, "workloads": workloads,
                       "labels": {wk: WORKLOAD_LABELS.get(wk, wk) for wk in workloads},
                       "components": COMPONENTS, "component_labels": COMPONENT_LABELS},
                      separators=(",", ":"))
    eid = html.escape(element_id)
    heading = f'<div class="tf-title">{html.escape(title)}</div>' if title else ""
    return f"""<div id="{eid}" class="tf-map">
<style>
#{eid} {{position:relative;max-width:{WIDTH}px;font:13px/1.35 system-ui,sans-serif;color:#222}}
#{eid} svg {{width:100%;height:auto;display:block;background:#fbfbfa}}
#{eid} .tf-state {{fill:#f0f0ec;stroke:#b0b0b0;stroke-width:0.6}}
#{eid} .tf-ring {{fill:none;stroke:#fff;stroke-width:1}}
#{eid} .tf-idle {{fill:#fff;stroke:#4d4d4d;stroke-width:1.2}}
#{eid} .tf-label {{font-size:10px;text-anchor:middle;fill:#333;pointer-events:none}}
#{eid} .tf-node {{cursor:pointer;outline:none}}
#{eid} .tf-node:hover circle, #{eid} .tf-node:focus circle {{stroke:#000;stroke-width:2}}
#{eid} .tf-legend span {{margin-right:1em;white-space:nowrap}}
#{eid} .tf-legend i {{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em}}
#{eid} .tf-tip {{position:absolute;display:none;background:#fff;border:1px solid #999;padding:6px 8px;
  box-shadow:0 2px 6px rgba(0,0,0,.2);pointer-events:none;z-index:10}}
#{eid} .tf-tip table {{border-collapse:collapse;margin:0}}
#{eid} .tf-tip td, #{eid} .tf-tip th {{padding:1px 6px;text-align:right;border:none;font-size:12px}}
#{eid} .tf-tip td:first-child, #{eid} .tf-tip th:first-child {{text-align:left}}
</style>
{heading}<svg viewBox="0 0 {WIDTH} {height:.0f}" role="img" aria-label="map of nodes; hover for prices">
{''.join(parts)}
</svg>
<div class="tf-legend">{legend} &nbsp; pie area &prop; tokens processed; hover or tab to a node
for its prices ($/M tokens) and their decomposition</div>
<div class="tf-tip" role="status"></div>
<script>
(function () {{
  var root = document.getElementById("{eid}"), D = {data};
  var tip = root.querySelector(".tf-tip");
  function f(v) {{ return v === null ? "&ndash;" : v.toFixed(4); }}
  function show(g) {{
    var n = D.nodes[+g.getAttribute("data-i")], h = "<b>" + n.name + "</b> (" + n.node + ")";
    h += "<table><tr><th>workload</th><th>price</th>";
    D.components.forEach(function (c) {{ h += "<th>" + D.component_labels[c] + "</th>"; }});
    h += "<th>served at</th><th>processed here</th></tr>";
    D.workloads.forEach(function (w) {{
      var p = n.prices[w];
      h += "<tr><td>" + D.labels[w] + "</td><td><b>" + f(p.price) + "</b></td>";
      D.components.forEach(function (c) {{ h += "<td>" + f(p[c]) + "</td>"; }});
      h += "<td>" + p.via + "</td><td>" + n.processing[w].toFixed(2) + "</td></tr>";
    }});
    tip.innerHTML = h + "</table>$/M tokens; price = processing + compute rent + transfer + congestion;" +
      " processed here in M tokens/h";
    var b = root.getBoundingClientRect(), r = g.getBoundingClientRect();
    tip.style.display = "block";
    var left = r.right - b.left + 8;
    if (left + tip.offsetWidth > b.width) left = Math.max(0, r.left - b.left - tip.offsetWidth - 8);
    tip.style.left = left + "px";
    tip.style.top = Math.max(0, r.top - b.top - 10) + "px";
  }}
  root.querySelectorAll(".tf-node").forEach(function (g) {{
    g.addEventListener("mouseenter", function () {{ show(g); }});
    g.addEventListener("focus", function () {{ show(g); }});
    g.addEventListener("mouseleave", function () {{ tip.style.display = "none"; }});
    g.addEventListener("blur", function () {{ tip.style.display = "none"; }});
  }});
}})();
</script>
</div>"""


def save_price_map(result: MarketResult, path: str | Path, *, title: str = "") -> Path:
    """Write :func:`price_map_html` as a standalone HTML file (opens offline in any browser)."""
    path = Path(path)
    body = price_map_html(result, title=title)
    path.write_text("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>"
                    f"{html.escape(title or 'tokenflow price map')}</title></head><body>\n{body}\n</body></html>\n")
    return path
