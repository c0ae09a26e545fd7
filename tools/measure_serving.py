"""Measure prefill and decode of a decoder with public model shapes: time and energy per token.

A serving engine's step time depends on the shapes of the model, not on the values of its
weights, so this builds a decoder with the public shapes of an 8B or a ~32B model and random
bf16 weights, and times:

* **prefill** at batch 1 over a grid of prompt lengths (causal attention over the prompt);
* **decode steps** over a grid of batch sizes and context lengths (one new token per sequence
  against a KV cache of ``context`` tokens), CUDA-graph captured so launch overhead does not
  count;
* **energy** from NVML's total-energy counter (mJ, the whole GPU board) around loops of at
  least ``--min-seconds`` (default 1.5 s).

Output: rows in the schema of ``tokenflow/data/serving_measurements.csv`` (quantities
``prefill_time``, ``prefill_energy``, ``decode_step``, ``decode_energy``), each with the
measurement record (``source_url`` = ``script:tools/measure_serving.py``, the date, the
hardware and software versions), written whole or not at all.

Backends: ``--device cuda`` (default) needs PyTorch with a CUDA device (and ``pynvml`` for
energy); without them the script says so, exits with status 2 and writes nothing.
``--device cpu`` runs a NumPy implementation at the tiny shape only (``--model tiny``), for
tests of the script itself: timings of a CPU, no energy.

Bounded: prompts and contexts of at most :data:`MAX_TOKENS` tokens (the 128k-token context
window of Llama-3.1), batches of at most :data:`MAX_BATCH`, at most :data:`MAX_VALUES` values
per list and ``--min-seconds`` up to :data:`MAX_MIN_SECONDS`; the CPU backend also refuses a grid
whose arrays need more than :data:`CPU_MEMORY_LIMIT` bytes.  ``--out`` is checked before anything
is measured (not a folder, not a device, its folder writable).  Ctrl-C or SIGTERM stops it with one
line (exit 130 / 143) and writes nothing.

Run:  python tools/measure_serving.py --model 8b --out results/serving_8b.csv
Exit codes: 0 written; 2 bad usage, a grid too large, or nothing to measure with; 3 ``--out``
cannot be written; 4 out of memory (host or accelerator); 130 Ctrl-C; 143 SIGTERM.  Every
failure writes nothing.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import math
import os
import platform
import signal
import stat
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# public shapes (Hugging Face config.json of each model)
SHAPES = {
    "8b": {"model": "8b-class", "name": "Llama-3.1-8B shapes, random weights", "layers": 32, "hidden": 4096,
           "heads": 32, "kv_heads": 8, "ffn": 14336, "vocab": 128256,
           "source": "https://huggingface.co/meta-llama/Llama-3.1-8B/blob/main/config.json"},
    "30b": {"model": "30b-class", "name": "Qwen2.5-32B shapes, random weights", "layers": 64, "hidden": 5120,
            "heads": 40, "kv_heads": 8, "ffn": 27648, "vocab": 152064,
            "source": "https://huggingface.co/Qwen/Qwen2.5-32B/blob/main/config.json"},
    "tiny": {"model": "tiny", "name": "tiny test decoder, random weights", "layers": 2, "hidden": 64,
             "heads": 4, "kv_heads": 2, "ffn": 128, "vocab": 256, "source": "tools/measure_serving.py"},
}
COLUMNS = ["accelerator", "model", "model_name", "gpus", "precision", "engine", "quantity", "batch",
           "input_tokens", "output_tokens", "value", "unit", "source_url", "source_date", "source_locator",
           "note"]
ACCELERATOR_IDS = {"H100": "H100-SXM-80GB", "H200": "H200-SXM-141GB"}
MAX_TOKENS = 131_072  # longest prompt or context: the 128k-token context window of Llama-3.1
MAX_BATCH = 4096  # largest decode batch
MAX_VALUES = 64  # values per list (--prompts, --batches, --contexts)
MAX_MIN_SECONDS = 600.0  # longest timing loop per grid point (10 minutes)
CPU_MEMORY_LIMIT = 2 * 2**30  # bytes the CPU (NumPy) test backend may allocate for one grid point


class OutputProblem(RuntimeError):
    """``--out`` cannot be written."""


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C."""


class NoAccelerator(RuntimeError):
    """What is needed to measure is not there (PyTorch, a CUDA device)."""


@dataclass
class Grid:
    prompts: list[int]
    batches: list[int]
    contexts: list[int]
    min_seconds: float


# --------------------------------------------------------------------------- backends

class NumpyDecoder:
    """The decoder in NumPy (float32), CPU only: for testing this script at tiny shapes."""

    def __init__(self, shape: dict, seed: int = 0) -> None:
        import numpy as np

        self.np = np
        rng = np.random.default_rng(seed)
        h, d = shape["hidden"], shape["hidden"] // shape["heads"]
        self.h, self.d, self.nh, self.nkv, self.L = h, d, shape["heads"], shape["kv_heads"], shape["layers"]
        w = lambda *s: (rng.standard_normal(s) * 0.02).astype(np.float32)  # noqa: E731
        self.layers = [{"q": w(h, self.nh * d), "k": w(h, self.nkv * d), "v": w(h, self.nkv * d),
                        "o": w(self.nh * d, h), "g": w(h, shape["ffn"]), "u": w(h, shape["ffn"]),
                        "dn": w(shape["ffn"], h)} for _ in range(self.L)]
        self.head = w(h, shape["vocab"])
        self.kv: dict = {}

    def energy_mj(self) -> float | None:
        return None

    def sync(self) -> None:
        return None

    def _mlp(self, x, p):
        g = x @ p["g"]
        return ((g / (1 + self.np.exp(-g))) * (x @ p["u"])) @ p["dn"]

    def prefill(self, n: int):
        np = self.np
        x = np.ones((n, self.h), np.float32) * 0.01
        g = self.nh // self.nkv
        mask = np.triu(np.full((n, n), -np.inf, np.float32), 1)
        for p in self.layers:
            q = (x @ p["q"]).reshape(n, self.nkv, g, self.d)
            k = (x @ p["k"]).reshape(n, self.nkv, self.d)
            v = (x @ p["v"]).reshape(n, self.nkv, self.d)
            s = np.einsum("ikgd,jkd->kgij", q, k) / math.sqrt(self.d) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            a = np.einsum("kgij,jkd->ikgd", s, v).reshape(n, -1)
            x = x + a @ p["o"]
            x = x + self._mlp(x, p)
        return x[-1:] @ self.head

    def decode_step(self, b: int, ctx: int):
        np = self.np
        key = (b, ctx)
        if key not in self.kv:
            self.kv = {key: [(np.full((b, self.nkv, ctx, self.d), 0.01, np.float32),) * 2 for _ in self.layers]}
        x = np.ones((b, self.h), np.float32) * 0.01
        g = self.nh // self.nkv
        for p, (kc, vc) in zip(self.layers, self.kv[key]):
            q = (x @ p["q"]).reshape(b, self.nkv, g, self.d)
            s = np.einsum("bkgd,bkjd->bkgj", q, kc) / math.sqrt(self.d)
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            a = np.einsum("bkgj,bkjd->bkgd", s, vc).reshape(b, -1)
            x = x + a @ p["o"]
            x = x + self._mlp(x, p)
        return x @ self.head

    @staticmethod
    def need_bytes(shape: dict, grid: Grid) -> tuple[int, str]:
        """Largest allocation of one grid point (bytes, float32) and which point it is."""
        d, nkv, nh = shape["hidden"] // shape["heads"], shape["kv_heads"], shape["heads"]
        worst = [(4 * n * (3 * n * nh + 4 * shape["hidden"] + shape["ffn"]), f"a prompt of {n} tokens")
                 for n in grid.prompts]  # the n x n scores of every head (three copies at once) dominate
        worst += [(4 * b * (2 * shape["layers"] * nkv * ctx * d + nh * ctx * 2), f"batch {b} at context {ctx}")
                  for b in grid.batches for ctx in grid.contexts]  # the KV cache of every layer
        return max(worst) if worst else (0, "nothing")

    def describe(self) -> tuple[str, str, str]:
        import numpy as np

        cpu = platform.processor() or platform.machine()
        return ("cpu", f"CPU {cpu} ({os.cpu_count()} cores)",
                f"python {platform.python_version()}, numpy {np.__version__}, float32")


class TorchDecoder:  # pragma: no cover - needs a CUDA device
    """The decoder in PyTorch, bf16 on one CUDA device; decode steps CUDA-graph captured."""

    def __init__(self, shape: dict, seed: int = 0) -> None:
        import torch

        self.torch = torch
        torch.manual_seed(seed)
        dev, dt_ = "cuda", torch.bfloat16
        h, d = shape["hidden"], shape["hidden"] // shape["heads"]
        self.h, self.d, self.nh, self.nkv, self.L = h, d, shape["heads"], shape["kv_heads"], shape["layers"]

        def w(*s):
            return (torch.randn(*s, device=dev, dtype=dt_) * 0.02)

        self.layers = [{"qkv": w(h, (self.nh + 2 * self.nkv) * d), "o": w(self.nh * d, h),
                        "gu": w(h, 2 * shape["ffn"]), "dn": w(shape["ffn"], h)} for _ in range(self.L)]
        self.head = w(h, shape["vocab"])
        self.graphs: dict = {}
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml = pynvml
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
        except Exception:  # noqa: BLE001 - energy is optional; timings still come back
            self.nvml = None

    def energy_mj(self) -> float | None:
        if self.nvml is None:
            return None
        return float(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))

    def sync(self) -> None:
        self.torch.cuda.synchronize()

    def _layer(self, x, p, attend):
        F = self.torch.nn.functional
        qkv = x @ p["qkv"]
        a = attend(qkv)
        x = x + a @ p["o"]
        gu = x @ p["gu"]
        g, u = gu.chunk(2, dim=-1)
        return x + (F.silu(g) * u) @ p["dn"]

    def prefill(self, n: int):
        torch, F = self.torch, self.torch.nn.functional
        x = torch.full((n, self.h), 0.01, device="cuda", dtype=torch.bfloat16)
        nh, nkv, d = self.nh, self.nkv, self.d

        def attend(qkv):
            q, k, v = qkv.split([nh * d, nkv * d, nkv * d], dim=-1)
            q = q.view(n, nh, d).transpose(0, 1)
            k = k.view(n, nkv, d).transpose(0, 1).repeat_interleave(nh // nkv, 0)
            v = v.view(n, nkv, d).transpose(0, 1).repeat_interleave(nh // nkv, 0)
            return F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(0, 1).reshape(n, nh * d)

        with torch.no_grad():
            for p in self.layers:
                x = self._layer(x, p, attend)
            return x[-1:] @ self.head

    def _capture(self, b: int, ctx: int):
        torch = self.torch
        nh, nkv, d = self.nh, self.nkv, self.d
        kv = [(torch.full((b, nkv, ctx, d), 0.01, device="cuda", dtype=torch.bfloat16),) * 2 for _ in self.layers]
        x0 = torch.full((b, self.h), 0.01, device="cuda", dtype=torch.bfloat16)

        def run():
            x = x0
            for p, (kc, vc) in zip(self.layers, kv):
                def attend(qkv, kc=kc, vc=vc):  # grouped-query attention against the KV cache
                    q = qkv[:, : nh * d].view(b, nkv, nh // nkv, d)
                    s = torch.softmax(q @ kc.transpose(-1, -2) / math.sqrt(d), dim=-1)
                    return (s @ vc).reshape(b, nh * d)
                x = self._layer(x, p, attend)
            return x @ self.head

        with torch.no_grad():
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                for _ in range(2):
                    run()
            torch.cuda.current_stream().wait_stream(s)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                run()
        return g, kv

    def decode_step(self, b: int, ctx: int):
        key = (b, ctx)
        if key not in self.graphs:
            self.graphs.clear()
            self.torch.cuda.empty_cache()
            self.graphs[key] = self._capture(b, ctx)
        self.graphs[key][0].replay()

    def describe(self) -> tuple[str, str, str]:
        torch = self.torch
        name = torch.cuda.get_device_name()
        acc = next((v for k, v in ACCELERATOR_IDS.items() if k in name), name)
        return (acc, f"{name}, driver CUDA {torch.version.cuda}",
                f"python {platform.python_version()}, torch {torch.__version__}, bf16, CUDA graphs")

    def fits(self, b: int, ctx: int) -> bool:
        need = 2 * self.L * b * self.nkv * ctx * self.d * 2
        free, _ = self.torch.cuda.mem_get_info()
        return need < 0.8 * free


def make_backend(device: str, shape_key: str):
    """The backend for ``device``; :class:`NoAccelerator` when it cannot run here."""
    if device == "cpu":
        if shape_key != "tiny":
            raise NoAccelerator("the CPU backend runs the tiny test shape only (--model tiny); "
                                "measurements of real shapes need a CUDA accelerator")
        return NumpyDecoder(SHAPES[shape_key])
    try:
        import torch
    except ImportError:
        raise NoAccelerator("PyTorch is not installed; a measurement needs PyTorch with a CUDA accelerator") from None
    if not torch.cuda.is_available():  # pragma: no cover - needs torch
        raise NoAccelerator("PyTorch finds no CUDA accelerator")
    return TorchDecoder(SHAPES[shape_key])  # pragma: no cover


# --------------------------------------------------------------------------- timing

def timed(backend, fn, min_seconds: float) -> tuple[float, float | None]:
    """(seconds per call, joules per call or None): ``fn`` repeated for at least ``min_seconds``."""
    fn()
    backend.sync()
    n, t0, e0 = 0, time.perf_counter(), backend.energy_mj()
    while True:
        fn()
        n += 1
        if n % 4 == 0 or n > 2:
            backend.sync()
            el = time.perf_counter() - t0
            if el >= min_seconds:
                break
    e1 = backend.energy_mj()
    return el / n, ((e1 - e0) / 1e3 / n if e0 is not None and e1 is not None else None)


def measure(backend, shape_key: str, grid: Grid) -> list[dict]:
    """Rows of the serving-data schema for every grid point (skips decode configs that do not fit)."""
    acc, hardware, software = backend.describe()
    shape = SHAPES[shape_key]
    today = dt.date.today().isoformat()
    base = {"accelerator": acc, "model": shape["model"], "model_name": shape["name"], "gpus": 1,
            "precision": "bf16" if acc != "cpu" else "fp32", "engine": "tools/measure_serving.py",
            "source_url": "script:tools/measure_serving.py", "source_date": today,
            "source_locator": f"hardware: {hardware}; software: {software}; shapes: {shape['source']}"}
    rows = []
    for n in grid.prompts:
        s, j = timed(backend, lambda n=n: backend.prefill(n), grid.min_seconds)
        rows.append({**base, "quantity": "prefill_time", "batch": 1, "input_tokens": n, "output_tokens": "",
                     "value": f"{s * 1e3:.6g}", "unit": "ms", "note": "batch 1, causal prefill of the prompt"})
        if j is not None:
            rows.append({**base, "quantity": "prefill_energy", "batch": 1, "input_tokens": n, "output_tokens": "",
                         "value": f"{j / n:.6g}", "unit": "J/token",
                         "note": "GPU board energy (NVML) per prompt token"})
    for b in grid.batches:
        for ctx in grid.contexts:
            if hasattr(backend, "fits") and not backend.fits(b, ctx):
                continue
            s, j = timed(backend, lambda b=b, ctx=ctx: backend.decode_step(b, ctx), grid.min_seconds)
            rows.append({**base, "quantity": "decode_step", "batch": b, "input_tokens": ctx, "output_tokens": 1,
                         "value": f"{s * 1e3:.6g}", "unit": "ms", "note": "one decode step, context = input_tokens"})
            if j is not None:
                rows.append({**base, "quantity": "decode_energy", "batch": b, "input_tokens": ctx, "output_tokens": 1,
                             "value": f"{j / b:.6g}", "unit": "J/token",
                             "note": "GPU board energy (NVML) per generated token"})
    return rows


def check_out(out: Path) -> Path:
    """Check, before anything is measured, that ``out`` can be written: not a folder, not a
    device or pipe, and the first existing folder on its path is a writable folder (missing
    folders are created when the rows are written).  :class:`OutputProblem` otherwise."""
    text = str(out)
    if not text.strip() or "\0" in text:
        raise OutputProblem(f"--out {text!r}: not a file name")
    try:
        if out.is_dir():
            raise OutputProblem(f"--out {out}: it is a folder; give a file name such as {out / 'serving.csv'}")
        if out.exists() and not stat.S_ISREG(out.stat().st_mode):
            raise OutputProblem(f"--out {out}: not a regular file (a device, pipe or socket)")
        folder = out.absolute().parent
        while not folder.exists() and not folder.is_symlink() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise OutputProblem(f"--out {out}: {folder} is not a folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputProblem(f"--out {out}: permission denied on folder {folder}")
        if out.exists() and not os.access(out, os.W_OK) and not os.access(out.parent, os.W_OK):
            raise OutputProblem(f"--out {out}: permission denied")
    except OSError as exc:  # e.g. a name too long, a symbolic link loop
        raise OutputProblem(f"--out {out}: {exc.strerror or exc}") from None
    return out


def write_rows(rows: list[dict], out: Path) -> None:
    """Write ``rows`` to ``out`` whole or not at all (a temporary file of its own in the same
    folder, flushed to disk, then renamed over ``out``).  :class:`OutputProblem` when the
    file system refuses (the previous ``out``, if any, is left as it was)."""
    tmp = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        tmp = Path(name)
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(rows)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        tmp.replace(out)
        tmp = None
    except OSError as exc:
        raise OutputProblem(f"--out {out}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _ints(what: str, largest: int):
    """argparse type: positive whole numbers separated by commas, each at most ``largest``,
    at most :data:`MAX_VALUES` of them (repeats dropped)."""
    def parse(text: str) -> list[int]:
        try:  # (1e9 is read as the whole number it is, then bounded)
            vals = [int(v) if v.strip().lstrip("+-").isdigit() else _whole(float(v))
                    for v in text.split(",") if v.strip()]
        except (ValueError, OverflowError):
            vals = []
        if not vals or min(vals) < 1:
            raise argparse.ArgumentTypeError(f"expected positive whole numbers separated by commas, got {text!r}")
        if max(vals) > largest:
            raise argparse.ArgumentTypeError(f"at most {largest} {what}, got {max(vals)}")
        vals = list(dict.fromkeys(vals))
        if len(vals) > MAX_VALUES:
            raise argparse.ArgumentTypeError(f"at most {MAX_VALUES} values, got {len(vals)}")
        return vals
    return parse


def _whole(v: float) -> int:
    if not (math.isfinite(v) and v == int(v)):
        raise ValueError(v)
    return int(v)


def _seconds(text: str) -> float:
    """argparse type for --min-seconds: a number in (0, MAX_MIN_SECONDS]."""
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not (math.isfinite(v) and 0 < v <= MAX_MIN_SECONDS):
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0 and at most {MAX_MIN_SECONDS:g}, "
                                         f"got {text!r}")
    return v


def _on_sigterm(signum, frame):  # noqa: ANN001 - signal handler signature
    raise _Terminated()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=sorted(SHAPES), default="8b")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--out", type=Path, required=True, help="CSV to write (whole or not at all)")
    ap.add_argument("--prompts", type=_ints("prompt tokens", MAX_TOKENS), default=[128, 512, 2048, 4096],
                    help=f"prompt lengths for prefill (tokens, at most {MAX_TOKENS})")
    ap.add_argument("--batches", type=_ints("sequences per batch", MAX_BATCH), default=[1, 8, 32, 64, 128, 256],
                    help=f"decode batch sizes (at most {MAX_BATCH})")
    ap.add_argument("--contexts", type=_ints("context tokens", MAX_TOKENS), default=[512, 2048, 4096],
                    help=f"decode context lengths (tokens, at most {MAX_TOKENS})")
    ap.add_argument("--min-seconds", type=_seconds, default=1.5,
                    help=f"shortest timing loop per grid point (s, at most {MAX_MIN_SECONDS:g})")
    args = ap.parse_args(argv)
    grid = Grid(args.prompts, args.batches, args.contexts, args.min_seconds)
    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not in the main thread
        pass
    try:
        check_out(args.out)
        try:
            backend = make_backend(args.device, args.model)
        except NoAccelerator as exc:
            print(f"measure_serving: cannot measure: {exc}; nothing written", file=sys.stderr)
            return 2
        if isinstance(backend, NumpyDecoder):
            need, where = NumpyDecoder.need_bytes(SHAPES[args.model], grid)
            if need > CPU_MEMORY_LIMIT:
                print(f"measure_serving: {where} needs about {need / 2**30:.1f} GiB on the CPU backend, more than "
                      f"its {CPU_MEMORY_LIMIT / 2**30:g} GiB; give smaller --prompts, --batches or --contexts; "
                      "nothing written", file=sys.stderr)
                return 2
        print(f"measure_serving: measuring {args.model} on {args.device} ({len(grid.prompts)} prompt lengths, "
              f"{len(grid.batches) * len(grid.contexts)} decode points) ...", file=sys.stderr, flush=True)
        rows = measure(backend, args.model, grid)
        write_rows(rows, args.out)
    except OutputProblem as exc:
        print(f"measure_serving: cannot write: {exc}; nothing written", file=sys.stderr)
        return 3
    except MemoryError:
        print("measure_serving: out of memory; give smaller --prompts, --batches or --contexts; nothing written",
              file=sys.stderr)
        return 4
    except RuntimeError as exc:
        if type(exc).__name__ != "OutOfMemoryError":  # torch.cuda.OutOfMemoryError (torch not imported here)
            raise
        print(f"measure_serving: out of accelerator memory ({str(exc).splitlines()[0][:160]}); give smaller "
              "--prompts, --batches or --contexts; nothing written", file=sys.stderr)
        return 4
    except KeyboardInterrupt as exc:
        term = isinstance(exc, _Terminated)
        print(f"measure_serving: {'terminated (SIGTERM)' if term else 'interrupted'}; nothing written",
              file=sys.stderr)
        return 143 if term else 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print(f"wrote {args.out} ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
