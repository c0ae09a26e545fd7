"""tools/measure_serving.py: a tiny CPU run, and no accelerator -> non-zero exit, nothing written."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tokenflow.serving import COLUMNS, load_serving_data, serving_models

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "measure_serving.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=120)


def _has_cuda() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch  # pragma: no cover

    return bool(torch.cuda.is_available())  # pragma: no cover


def test_tiny_cpu_run_writes_serving_rows(tmp_path):
    out = tmp_path / "sub" / "tiny.csv"
    r = _run("--model", "tiny", "--device", "cpu", "--out", str(out), "--prompts", "8,32",
             "--batches", "1,4,16", "--contexts", "16,64", "--min-seconds", "0.02")
    assert r.returncode == 0, r.stderr
    with out.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0].keys()) == COLUMNS
    q = [x["quantity"] for x in rows]
    assert q.count("prefill_time") == 2 and q.count("decode_step") == 6
    assert "prefill_energy" not in q  # a CPU has no energy counter here: no energy rows, none invented
    assert all(float(x["value"]) > 0 for x in rows)
    assert all(x["source_url"] == "script:tools/measure_serving.py" and x["source_date"] for x in rows)
    assert all("hardware:" in x["source_locator"] and "software:" in x["source_locator"] for x in rows)
    assert not list(out.parent.glob("*.tmp"))
    # the output is in the serving-data schema: relabelled as a known accelerator/model and given
    # a power row, it loads and yields a step-time fit
    for x in rows:
        x.update(accelerator="H100-SXM-80GB", model="8b-class")
    rows.append({**rows[0], "quantity": "gpu_power", "batch": "", "input_tokens": "", "output_tokens": "",
                 "value": "100", "unit": "W"})
    p = tmp_path / "relabelled.csv"
    with p.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    m = serving_models(load_serving_data(p))[("H100-SXM-80GB", "8b-class")]
    assert m.prefill_s_per_token > 0 and len(m.decode_points) == 6


@pytest.mark.skipif(_has_cuda(), reason="a CUDA accelerator is present")
def test_no_accelerator_exits_non_zero_and_writes_nothing(tmp_path):
    out = tmp_path / "serving.csv"
    r = _run("--model", "8b", "--out", str(out))
    assert r.returncode == 2
    assert "cannot measure" in r.stderr and "nothing written" in r.stderr
    assert not out.exists() and not list(tmp_path.iterdir())


def test_cpu_backend_refuses_real_shapes(tmp_path):
    out = tmp_path / "serving.csv"
    r = _run("--model", "8b", "--device", "cpu", "--out", str(out))
    assert r.returncode == 2 and "tiny" in r.stderr
    assert not out.exists()


def test_bad_grid_is_a_usage_error(tmp_path):
    r = _run("--model", "tiny", "--device", "cpu", "--out", str(tmp_path / "x.csv"), "--batches", "0,4")
    assert r.returncode == 2 and "positive whole numbers" in r.stderr
    r = _run("--model", "tiny", "--device", "cpu", "--out", str(tmp_path / "x.csv"), "--min-seconds", "nan")
    assert r.returncode == 2 and "min-seconds" in r.stderr
    assert not list(tmp_path.iterdir())
