"""tools/measure_serving.py: a tiny CPU run, and no accelerator -> non-zero exit, nothing written."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tokenflow.scenarios.serving import COLUMNS, load_serving_data, serving_models

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


# ------------------------------------------------- issue 28: bounded sizes, clean errors, atomic output

TINY = ("--model", "tiny", "--device", "cpu")


def _tool():
    """The script as a module (for what a subprocess cannot show: permissions as root, a failing disk)."""
    spec = importlib.util.spec_from_file_location("measure_serving_under_test", TOOL)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # (its dataclass looks itself up there)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("args, needle", [
    (("--prompts", "200000"), "--prompts: at most 131072 prompt tokens, got 200000"),
    (("--contexts", "1e9"), "--contexts: at most 131072 context tokens, got 1000000000"),
    (("--batches", "4097"), "--batches: at most 4096 sequences per batch"),
    (("--prompts", ",".join(str(i) for i in range(1, 70))), "at most 64 values, got 69"),
    (("--min-seconds", "1e300"), "--min-seconds: must be a number of seconds above 0 and at most 600"),
    (("--min-seconds", "inf"), "at most 600"),
    (("--min-seconds", "0"), "above 0"),
    (("--prompts", "8192"), "a prompt of 8192 tokens needs about 3.0 GiB on the CPU backend, more than its 2 GiB"),
    (("--batches", "4096", "--contexts", "131072"), "batch 4096 at context 131072 needs about"),
])
def test_sizes_are_bounded_before_anything_is_allocated(tmp_path, args, needle):
    r = _run(*TINY, "--out", str(tmp_path / "x.csv"), *args)
    assert r.returncode == 2 and needle in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not list(tmp_path.iterdir())


def test_a_bad_out_is_refused_before_measuring(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("a file")
    for out, needle in ((tmp_path / "folder", "it is a folder"),
                        (tmp_path / "file" / "x.csv", f"{tmp_path / 'file'} is not a folder"),
                        (Path("/dev/null"), "not a regular file")):
        r = _run(*TINY, "--out", str(out), "--min-seconds", "60")  # (a measurement would take minutes)
        assert r.returncode == 3, r.stderr
        assert f"cannot write: --out {out}: {needle}" in r.stderr and "nothing written" in r.stderr
        assert "Traceback" not in r.stderr and "measuring" not in r.stderr
    assert (tmp_path / "file").read_text() == "a file"


def test_a_folder_without_write_permission_is_refused(tmp_path, monkeypatch):
    mod = _tool()
    real = mod.os.access
    monkeypatch.setattr(mod.os, "access", lambda p, mode: False if Path(p) == tmp_path else real(p, mode))
    with pytest.raises(mod.OutputProblem, match=f"permission denied on folder {tmp_path}"):
        mod.check_out(tmp_path / "new" / "x.csv")  # (the first folder that exists is the one checked)
    monkeypatch.setattr(mod.os, "replace", lambda *a: (_ for _ in ()).throw(PermissionError(13, "Permission denied")))
    out = tmp_path / "x.csv"
    out.write_text("previous")
    with pytest.raises(mod.OutputProblem, match="Permission denied"):
        mod.write_rows([], out)
    assert out.read_text() == "previous" and sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]


def test_output_is_whole_or_not_at_all(tmp_path, monkeypatch):
    mod = _tool()
    out = tmp_path / "x.csv"
    out.write_text("previous")
    row = dict.fromkeys(mod.COLUMNS, "v")

    def half(self, rows):  # the disk fills after some rows
        self.writerow(row)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mod.csv.DictWriter, "writerows", half)
    with pytest.raises(mod.OutputProblem, match="No space left"):
        mod.write_rows([row] * 3, out)
    assert out.read_text() == "previous" and sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]
    monkeypatch.undo()
    mod.write_rows([row] * 3, out)
    assert len(out.read_text().splitlines()) == 4 and sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]


@pytest.mark.parametrize("sig, code, word", [("SIGINT", 130, "interrupted"), ("SIGTERM", 143, "terminated")])
def test_ctrl_c_is_one_line_and_writes_nothing(tmp_path, sig, code, word):
    import signal
    import time

    out = tmp_path / "x.csv"
    out.write_text("previous")
    proc = subprocess.Popen([sys.executable, str(TOOL), *TINY, "--out", str(out), "--prompts", "8", "--batches", "1",
                             "--contexts", "16", "--min-seconds", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    started = proc.stderr.readline()
    assert "measuring tiny on cpu" in started, started
    time.sleep(0.3)
    proc.send_signal(getattr(signal, sig))
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == code, stderr
    assert stderr.strip() == f"measure_serving: {word}{' (SIGTERM)' if code == 143 else ''}; nothing written"
    assert out.read_text() == "previous" and sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]


@pytest.mark.parametrize("error, needle", [(MemoryError, "out of memory;"),
                                           ("OutOfMemoryError", "out of accelerator memory (CUDA out of memory")])
def test_running_out_of_memory_is_one_line(tmp_path, monkeypatch, capsys, error, needle):
    """Host memory (MemoryError) or the accelerator's (torch.cuda.OutOfMemoryError, by name)."""
    mod = _tool()
    if isinstance(error, str):
        error = type(error, (RuntimeError,), {})("CUDA out of memory. Tried to allocate 14.50 GiB")

    def boom(*a):
        raise error

    monkeypatch.setattr(mod, "measure", boom)
    out = tmp_path / "x.csv"
    assert mod.main([*TINY, "--out", str(out), "--prompts", "8", "--batches", "1", "--contexts", "16"]) == 4
    err = capsys.readouterr().err
    assert needle in err and err.strip().endswith("nothing written") and not out.exists()
