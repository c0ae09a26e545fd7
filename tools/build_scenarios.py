"""Write the packaged scenarios ``tokenflow/data/us5.yaml`` and ``us20.yaml``.

Maintainer tool, not used at run time: it reads the sourced reference set in
``../shared/reference`` (metros, EIA prices) once and writes every figure into
the package's own YAML files together with its source URL, so the package never
needs ``../shared``.  Inputs that no source pins down are written as
``assumption:`` entries with a one-line reason.

Run:  python tools/build_scenarios.py [path/to/shared/reference]
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "tokenflow" / "data"

EIA_URL = "https://www.eia.gov/electricity/annual/secrev-map.php"
CENSUS_URL = (
    "https://www2.census.gov/programs-surveys/popest/datasets/2020-2023/metro/"
    "totals/cbsa-est2023-alldata.csv"
)
SIMPLEMAPS_URL = "https://simplemaps.com/data/us-cities"

US5 = ["silicon_valley", "dallas", "chicago", "n_virginia", "new_york"]
US5_LINKS = [
    ("silicon_valley", "dallas"),
    ("silicon_valley", "chicago"),
    ("dallas", "chicago"),
    ("dallas", "n_virginia"),
    ("chicago", "n_virginia"),
    ("chicago", "new_york"),
    ("n_virginia", "new_york"),
]
US20 = [
    "n_virginia", "dallas", "chicago", "silicon_valley", "phoenix", "atlanta",
    "hillsboro", "new_york", "los_angeles", "columbus", "salt_lake_city", "denver",
    "houston", "minneapolis", "boston", "san_antonio", "austin",
    # no capacity figure found for these three: capacity is an assumption
    "seattle_quincy", "des_moines", "charlotte",
]


def parameters(kind: str) -> dict:
    """Scenario-wide parameters with provenance."""
    return {
        "route_factor": {
            "value": 1.8,
            "unit": "-",
            "assumption": "fibre route length / great-circle distance; middle of the 1.5-2.4 "
            "implied by Azure inter-region RTTs and of Bozkurt et al.'s 1.3 (conduit) - 2.1 "
            "(Internet) range (arXiv 1811.10737)",
            "range": [1.3, 2.4],
        },
        "fiber_delay_us_per_km": {
            "value": 4.897,
            "unit": "us/km",
            "source": "https://mapyourtech.com/the-5-microsecond-rule-fiber-propagation-latency-per-kilometer/",
        },
        "pue": {
            "value": 1.58,
            "unit": "-",
            "source": "https://intelligence.uptimeinstitute.com/resource/large-data-centers-are-mostly-more-efficient-analysis-confirms",
            "note": "Uptime Institute industry-average PUE, 2023; applied to every node",
            "range": [1.1, 1.6],
        },
        "ai_share": {
            "value": 0.10,
            "unit": "-",
            "assumption": "share of each metro's data-centre IT capacity available to the "
            "generative-AI market; no public split by workload exists",
            "range": [0.05, 0.3],
        },
        "other_opex_usd_per_kwh": {
            "value": 0.049596,
            "unit": "$/kWh (IT)",
            "assumption": "variable non-energy operating cost per kWh of IT energy (maintenance, "
            "water, staff, wear); the paper cites an operating-cost guide we do not have. "
            "CALIBRATED on us5 to claim C3 by tokenflow.calibration (tokenflow calibrate)",
            "range": [0.0, 0.1],
        },
        "transfer_cost_usd_per_gb": {
            "value": 0.002,
            "unit": "$/GB per link",
            "assumption": "wholesale long-haul transport: a leased 100G wave (~$15k/month) at "
            "50 % mean load moves ~16 PB/month, ~$0.001/GB, doubled for equipment and "
            "operations; cloud egress list prices (~$0.02/GB) are the upper end",
            "range": [0.001, 0.02],
        },
        "link_bandwidth_gbps": {
            "value": 101.252,
            "unit": "Gbps per direction",
            "assumption": "capacity of the fibre link leased for AI traffic between two metros, "
            "about one 100G wave; the paper does not state it. CALIBRATED on us5 to claim C2 "
            "by tokenflow.calibration (tokenflow calibrate); us20 uses the same value",
            "range": [50.0, 400.0],
        },
        "reference_payload_bytes_per_token": {
            "value": 4.0,
            "unit": "B/token",
            "source": "https://help.openai.com/en/articles/4936856-what-are-tokens-and-how-to-count-them",
            "note": "DERIVED: about 4 characters per English token x 1 byte/char; the "
            "token-equivalent baseline counts every token as one text token",
        },
        "paths_per_pair": {
            "value": 3,
            "unit": "-",
            "assumption": "candidate paths per origin-processing pair (shortest by latency, "
            "distinct first hops)",
        },
    }


def workloads() -> dict:
    """The four workload classes, per-token figures with provenance."""
    return {
        "chat": {
            "energy_kwh_per_mtok": {
                "value": 0.101,
                "source": "https://ml.energy/blog/measurement/energy/llm-inference-energy-a-longitudinal-analysis",
                "note": "DERIVED: 0.20 J/token (Llama 3.1 8B, H100, GPU only) / 0.55 GPU share "
                "of DGX H100 power = 0.364 J/token = 0.101 kWh per M tokens",
            },
            "payload_bytes_per_token": {
                "value": 150.0,
                "assumption": "per generated token: ~2k-token prompt context at 4 B/token "
                "amortised over ~700 output tokens, plus streaming-event framing",
                "range": [20.0, 400.0],
            },
            "latency_limit_ms": {
                "value": 100.0,
                "source": "arXiv 2605.09047 (paper): chatbot latency limit 100 ms",
            },
            "demand_mtok_per_h_per_mpeople": {
                "value": 800.0,
                "assumption": "base (1x) demand per million residents; sized so that 1x uses "
                "~2.5 % of the modelled AI capacity and the paper's 35x is close to full",
            },
        },
        "image": {
            "energy_kwh_per_mtok": {
                "value": 0.708,
                "source": "https://arxiv.org/abs/2311.16863",
                "note": "DERIVED: 2.9 Wh per image (Luccioni et al.) / 4096 tokens per "
                "1024x1024 image (2x2 patches of a 128x128 latent)",
            },
            "payload_bytes_per_token": {
                "value": 366.0,
                "assumption": "1.5 MB compressed 1024x1024 image (half the 3.1 MB uncompressed "
                "size) / 4096 tokens per image",
                "range": [100.0, 800.0],
            },
            "latency_limit_ms": {
                "value": 1000.0,
                "assumption": "5 % of MLPerf's 20 s SDXL server latency bound may go to the network",
            },
            "demand_mtok_per_h_per_mpeople": {
                "value": 55.0,
                "assumption": "base demand per million residents (about 20 % of base compute)",
            },
        },
        "code_review": {
            "energy_kwh_per_mtok": {
                "value": 0.278,
                "assumption": "1.0 J/token, a ~70B code model: between 0.36 J (8B, server) and "
                "3-4 J (65B unoptimised, Samsi et al. arXiv 2310.03003)",
            },
            "payload_bytes_per_token": {
                "value": 120.0,
                "assumption": "~30k-token diff and context at 4 B/token per ~1k review tokens",
                "range": [40.0, 400.0],
            },
            "latency_limit_ms": {
                "value": 250.0,
                "assumption": "~12 % of MLPerf's 2 s server TTFT, the share a 64 ms "
                "coast-to-coast RTT takes of the 450 ms interactive TTFT",
            },
            "demand_mtok_per_h_per_mpeople": {
                "value": 110.0,
                "assumption": "base demand per million residents (about 15 % of base compute)",
            },
        },
        "batch_training": {
            "energy_kwh_per_mtok": {
                "value": 0.303,
                "source": "https://ml.energy/blog/measurement/energy/llm-inference-energy-a-longitudinal-analysis",
                "note": "DERIVED: training costs ~3x inference FLOPs per token (6N vs 2N): "
                "3 x 0.101 kWh per M tokens",
            },
            "payload_bytes_per_token": {
                "value": 4.0,
                "source": "https://help.openai.com/en/articles/4936856-what-are-tokens-and-how-to-count-them",
                "note": "DERIVED: training text moves at ~4 B/token",
            },
            "latency_limit_ms": {
                "value": 10000.0,
                "assumption": "batch jobs tolerate any U.S. path; a finite limit keeps the "
                "input explicit",
            },
            "demand_mtok_per_h_per_mpeople": {
                "value": 230.0,
                "assumption": "base demand per million residents (about 35 % of base compute); "
                "training is sited by the market, population only sets its scale",
            },
        },
    }


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(
        (lon2 - lon1) / 2
    ) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def knn_links(ids: list[str], coords: dict[str, tuple[float, float]], k: int) -> list:
    """Each metro linked to its k nearest neighbours (symmetrised), then joined up."""
    links: set[tuple[str, str]] = set()
    for a in ids:
        near = sorted((haversine_km(coords[a], coords[b]), b) for b in ids if b != a)
        for _, b in near[:k]:
            links.add(tuple(sorted((a, b))))
    # join components with the shortest bridging link until connected
    while True:
        comp = {ids[0]}
        grew = True
        while grew:
            grew = False
            for a, b in links:
                if (a in comp) != (b in comp):
                    comp |= {a, b}
                    grew = True
        if len(comp) == len(ids):
            break
        best = min(
            (haversine_km(coords[a], coords[b]), a, b)
            for a in comp for b in ids if b not in comp
        )
        links.add(tuple(sorted(best[1:])))
    return sorted(links)


def node_entry(row: dict, prices: dict, assumed_mw: float | None) -> dict:
    st = row["state"]
    entry = {
        "name": row["display_name"],
        "state": st,
        "lat": {"value": float(row["latitude"]), "source": SIMPLEMAPS_URL},
        "lon": {"value": float(row["longitude"]), "source": SIMPLEMAPS_URL},
        "population": {
            "value": int(row["msa_population"]),
            "source": CENSUS_URL,
            "note": row["msa_name"] + ", July 1 2023",
        },
        "electricity_usd_per_kwh": {
            "value": round(float(prices[st]["commercial_cents_per_kwh"]) / 100, 5),
            "source": EIA_URL,
            "note": f"EIA Electric Power Annual, {st} commercial average, 2023",
        },
    }
    if row["dc_capacity_mw"]:
        entry["capacity_mw"] = {
            "value": float(row["dc_capacity_mw"]),
            "source": row["capacity_source_url"],
            "note": f"{row['capacity_measure']}, {row['capacity_year']}",
        }
    else:
        entry["capacity_mw"] = {
            "value": assumed_mw,
            "assumption": "no published capacity found; set to the lower quartile of the "
            "sourced metros in this scenario",
        }
    return entry


def build(ref: Path) -> None:
    metros = {r["metro_id"]: r for r in csv.DictReader(open(ref / "metros.csv"))}
    prices = {r["state"]: r for r in csv.DictReader(open(ref / "electricity_prices_by_state.csv"))}
    for name, ids, links, title in [
        ("us5", US5, US5_LINKS, "Five U.S. data-centre metros"),
        ("us20", US20, None, "Twenty U.S. data-centre metros"),
    ]:
        sourced = sorted(float(metros[i]["dc_capacity_mw"]) for i in ids if metros[i]["dc_capacity_mw"])
        q1 = sourced[len(sourced) // 4]
        nodes = {i: node_entry(metros[i], prices, q1) for i in ids}
        if links is None:
            coords = {i: (nodes[i]["lat"]["value"], nodes[i]["lon"]["value"]) for i in ids}
            links = knn_links(ids, coords, k=3)
            link_note = "backbone assumed: each metro linked to its 3 nearest metros"
        else:
            link_note = "backbone assumed: long-haul routes between the five metros"
        doc = {
            "name": name,
            "title": title,
            "description": "Generated by tools/build_scenarios.py from the sourced reference "
            "set; every figure carries its source or is marked an assumption.",
            "parameters": parameters(name),
            "workloads": workloads(),
            "nodes": nodes,
            "links_note": link_note,
            "links": [{"a": a, "b": b} for a, b in links],
        }
        path = OUT / f"{name}.yaml"
        with open(path, "w") as fh:
            yaml.safe_dump(doc, fh, sort_keys=False, allow_unicode=True, width=100)
        print("wrote", path)


if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent.parent / "shared" / "reference")
