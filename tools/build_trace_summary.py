"""Write ``tokenflow/data/azure_trace_summary.json`` from the Azure LLM inference traces 2023.

Maintainer tool, not used at run time: it reads the raw CSVs once from the shared reference
set (``../shared/reference/azure_llm_traces_2023`` relative to the repository) and writes a
compact summary (quantiles, histograms, burstiness) into the package, which never reads
``../shared``.  Traces: CC-BY 4.0; cite Patel et al., "Splitwise", ISCA 2024.

Run:  python tools/build_trace_summary.py [path/to/azure_llm_traces_2023]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from tokenflow.scenarios.traces import SUMMARY_FILE, build_summary  # noqa: E402

DEFAULT = ROOT / ".." / "shared" / "reference" / "azure_llm_traces_2023"


def main(argv: list[str]) -> int:
    src = Path(argv[1]) if len(argv) > 1 else DEFAULT
    if not src.is_dir():
        print(f"trace folder not found: {src}", file=sys.stderr)
        return 1
    summary = build_summary(src)
    out = ROOT / "tokenflow" / "data" / SUMMARY_FILE
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    tmp.replace(out)
    print(f"wrote {out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
