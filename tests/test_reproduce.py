"""Incremental rebuilds: a notebook is re-executed only when its content key changes."""

from __future__ import annotations

import json

import nbformat
import pytest

from tokenflow.core.errors import TokenflowError
from tokenflow.publish import build_state as bs
from tokenflow.publish import reproduce as rp


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    pytest.importorskip("papermill")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    params = nbformat.v4.new_code_cell('n = 1\noutput_dir = "results"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("import os\nprint(n, os.path.isdir(output_dir))")]
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / "notebooks" / "tiny.ipynb")
    monkeypatch.setattr(rp, "NOTEBOOKS", {"tiny": ({"n": 3}, {"n": 2})})
    return tmp_path


def test_reuse_then_reexecute_on_change_and_force(tiny):
    rp.run_notebooks(tiny)
    assert rp.last_status() == {"tiny": "executed"}
    rp.run_notebooks(tiny)
    assert rp.last_status() == {"tiny": "reused"}
    rp.run_notebooks(tiny, fast=True)  # other parameters: another key
    assert rp.last_status() == {"tiny": "executed"}
    rp.run_notebooks(tiny, fast=True, force=True)
    assert rp.last_status() == {"tiny": "executed"}
    src = tiny / "notebooks" / "tiny.ipynb"
    nb = nbformat.read(src, as_version=4)
    nb.cells[1].source += "\nprint('changed')"
    nbformat.write(nb, src)
    rp.run_notebooks(tiny, fast=True)
    assert rp.last_status() == {"tiny": "executed"}
    rp.run_notebooks(tiny, fast=True)
    assert rp.last_status() == {"tiny": "reused"}


def test_executed_copy_has_no_machine_path_and_hides_injected_cell(tiny):
    rp.run_notebooks(tiny)
    out = tiny / "book" / "generated" / "tiny.ipynb"
    text = out.read_text()
    assert str(tiny) not in text
    nb = json.loads(text)
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and "remove-cell" in injected[0]["metadata"]["tags"]
    assert 'output_dir = "results"' in "".join(injected[0]["source"])
    printed = "".join("".join(o.get("text", [])) for c in nb["cells"] for o in c.get("outputs", []))
    assert printed.strip() == "3 True"


def test_package_change_changes_every_key(tiny, monkeypatch):
    src = tiny / "notebooks" / "tiny.ipynb"
    k1 = bs.notebook_key(src, {"n": 1}, bs.package_fingerprint())
    assert k1 == bs.notebook_key(src, {"n": 1}, bs.package_fingerprint())
    assert k1 != bs.notebook_key(src, {"n": 1}, "another package")
    assert k1 != bs.notebook_key(src, {"n": 2}, bs.package_fingerprint())


def test_unknown_notebook_is_a_clear_error(tiny):
    with pytest.raises(TokenflowError, match="unknown notebook"):
        rp.run_notebooks(tiny, names=["nope"])


def test_every_toc_notebook_is_reproduced():
    """reproduce lists exactly the notebooks the book's table of contents shows."""
    import yaml

    root = rp.Path(__file__).resolve().parents[1]
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [ch["file"] for part in toc["parts"] for ch in part["chapters"]]
    in_toc = {f.rsplit("/", 1)[1] for f in files if f.startswith("book/generated/")}
    on_disk = {p.stem for p in (root / "notebooks").glob("*.ipynb")}
    assert in_toc <= set(rp.NOTEBOOKS)
    assert in_toc & on_disk == in_toc


# ------------------------------------------------------- issue 15: a transactional book


def _set_cell(root, name: str, code: str) -> None:
    src = root / "notebooks" / f"{name}.ipynb"
    nb = nbformat.read(src, as_version=4)
    nb.cells[1].source = code
    nbformat.write(nb, src)


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_failing_notebook_leaves_the_previous_generated_folder(tiny):
    rp.run_notebooks(tiny)
    gen = tiny / "book" / "generated"
    before = _snapshot(gen)
    _set_cell(tiny, "tiny", "raise ValueError('boom')")
    with pytest.raises(TokenflowError, match=r"failed in cell \d+: ValueError: boom.*previous book/generated "
                                             "is unchanged"):
        rp.run_notebooks(tiny)
    assert _snapshot(gen) == before
    assert not list(gen.rglob(".*.running.ipynb"))
    assert "boom" in (tiny / rp.FAILED / "tiny.ipynb").read_text()  # the failed copy, outside the book
    _set_cell(tiny, "tiny", "print('fixed', n)")
    rp.run_notebooks(tiny)
    assert rp.last_status() == {"tiny": "executed"}
    assert "fixed 3" in (gen / "tiny.ipynb").read_text()
    assert not (tiny / bs.STAGING).exists() and not (tiny / bs.OLD).exists()


def test_a_run_resumes_the_notebooks_a_failed_run_executed(tiny, monkeypatch):
    nb = nbformat.read(tiny / "notebooks" / "tiny.ipynb", as_version=4)
    nbformat.write(nb, tiny / "notebooks" / "second.ipynb")
    monkeypatch.setattr(rp, "NOTEBOOKS", {"tiny": ({"n": 3}, {"n": 2}), "second": ({"n": 3}, {"n": 2})})
    _set_cell(tiny, "second", "raise RuntimeError('later')")
    with pytest.raises(TokenflowError, match="second.ipynb failed"):
        rp.run_notebooks(tiny)
    assert not (tiny / "book" / "generated").exists()  # nothing swapped in
    _set_cell(tiny, "second", "print('ok')")
    rp.run_notebooks(tiny)
    assert rp.last_status() == {"tiny": "reused", "second": "executed"}


def test_a_run_last_notebook_runs_again_when_one_it_reads_changes(tiny, monkeypatch):
    """The results page reads what the other notebooks wrote (the Monte Carlo draws, the record):
    it runs again whenever one of them changes, and is reused when none does."""
    nb = nbformat.read(tiny / "notebooks" / "tiny.ipynb", as_version=4)
    nbformat.write(nb, tiny / "notebooks" / "last.ipynb")
    monkeypatch.setattr(rp, "NOTEBOOKS", {"tiny": ({"n": 3}, {"n": 2}), "last": ({"n": 3}, {"n": 2})})
    monkeypatch.setattr(rp, "RUN_LAST", frozenset({"last"}))
    rp.run_notebooks(tiny)
    rp.run_notebooks(tiny)
    assert rp.last_status() == {"tiny": "reused", "last": "reused"}
    _set_cell(tiny, "tiny", "print('changed')")
    rp.run_notebooks(tiny, names=["last"])  # only the reader is asked for: it still sees the change
    assert rp.last_status() == {"last": "executed"}


def test_a_failed_notebook_never_reaches_the_book_through_a_later_run(tiny, monkeypatch):
    nb = nbformat.read(tiny / "notebooks" / "tiny.ipynb", as_version=4)
    nbformat.write(nb, tiny / "notebooks" / "other.ipynb")
    monkeypatch.setattr(rp, "NOTEBOOKS", {"tiny": ({"n": 3}, {"n": 2}), "other": ({"n": 3}, {"n": 2})})
    rp.run_notebooks(tiny)
    gen = tiny / "book" / "generated"
    good = (gen / "tiny.ipynb").read_bytes()
    _set_cell(tiny, "tiny", "raise ValueError('boom')")
    with pytest.raises(TokenflowError, match="boom"):
        rp.run_notebooks(tiny, names=["tiny"])
    _set_cell(tiny, "other", "print('changed')")
    rp.run_notebooks(tiny, names=["other"])  # succeeds and swaps the staging folder in
    assert (gen / "tiny.ipynb").read_bytes() == good
    assert "boom" not in (gen / "tiny.ipynb").read_text()


def test_interrupt_during_a_notebook_keeps_the_previous_folder(tiny, monkeypatch):
    rp.run_notebooks(tiny)
    gen = tiny / "book" / "generated"
    before = _snapshot(gen)

    def interrupted(src, dst, *a):
        dst.write_text("half")
        raise KeyboardInterrupt

    monkeypatch.setattr(rp, "_execute", interrupted)
    with pytest.raises(KeyboardInterrupt, match="previous book/generated is unchanged"):
        rp.run_notebooks(tiny, force=True)
    assert _snapshot(gen) == before
    assert not list((tiny / bs.STAGING).glob(".*.running.ipynb"))


def test_swap_cut_between_its_renames_is_recovered(tiny):
    rp.run_notebooks(tiny)
    gen, old = tiny / "book" / "generated", tiny / bs.OLD
    before = _snapshot(gen)
    gen.rename(old)  # as if killed between the two renames of the swap
    rp.run_notebooks(tiny)
    assert rp.last_status() == {"tiny": "reused"} and _snapshot(gen) == before and not old.exists()


def test_reproduce_refuses_another_folders_package(tiny, capsys):
    (tiny / "tokenflow").mkdir()
    (tiny / "tokenflow" / "__init__.py").write_text("__version__ = 'other'\n")
    with pytest.raises(TokenflowError, match="other code"):
        rp.run_notebooks(tiny)
    from tokenflow.cli import main

    assert main(["reproduce", "--root", str(tiny), "--no-build"]) == 2
    err = capsys.readouterr().err
    assert "PYTHONPATH=" in err and "Traceback" not in err


FAKE_JB = r"""
import pathlib, sys
args = sys.argv[1:]
root, out, builder = pathlib.Path(args[1]), pathlib.Path(args[args.index("--path-output") + 1]), \
    args[args.index("--builder") + 1]
html = out / "_build" / builder
html.mkdir(parents=True)
(html / "index.html").write_text((root / "page.txt").read_text())
if (root / "FAIL").exists():
    print("WARNING: a broken reference"); sys.exit(1)
"""


@pytest.fixture
def fake_book(tmp_path, monkeypatch):
    import sys

    (tmp_path / "fake_jb.py").write_text(FAKE_JB)
    (tmp_path / "_config.yml").write_text("title: t\n")
    (tmp_path / "_toc.yml").write_text("root: page\n")
    (tmp_path / "book").mkdir()
    (tmp_path / "page.txt").write_text("v1")
    monkeypatch.setattr(rp, "jupyter_book", lambda: [sys.executable, str(tmp_path / "fake_jb.py")])
    return tmp_path


def test_failed_book_build_keeps_the_previous_book(fake_book):
    assert rp.build_book(fake_book)[1] is True
    html = fake_book / "_build" / "html"
    assert (html / "index.html").read_text() == "v1"
    assert rp.build_book(fake_book)[1] is False  # same key: reused
    (fake_book / "page.txt").write_text("v2")
    (fake_book / "book" / "edit.md").write_text("changed")
    (fake_book / "FAIL").write_text("")
    with pytest.raises(TokenflowError, match="failed; the previous book in .* is unchanged"):
        rp.build_book(fake_book)
    assert (html / "index.html").read_text() == "v1"
    assert not (fake_book / "_build" / ".staging-html").exists()
    (fake_book / "FAIL").unlink()
    assert rp.build_book(fake_book)[1] is True
    assert (html / "index.html").read_text() == "v2"


def test_interrupted_book_build_keeps_the_previous_book(fake_book, monkeypatch):
    rp.build_book(fake_book)
    (fake_book / "book" / "edit.md").write_text("changed")

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(rp.subprocess, "run", interrupted)
    with pytest.raises(KeyboardInterrupt, match="previous book"):
        rp.build_book(fake_book)
    assert (fake_book / "_build" / "html" / "index.html").read_text() == "v1"


@pytest.mark.slow
def test_ctrl_c_prints_one_line_and_keeps_the_book(tmp_path):
    """A real SIGINT to `tokenflow reproduce` while a notebook sleeps: exit 130, one line."""
    import os
    import signal
    import subprocess
    import sys
    import time

    pytest.importorskip("papermill")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    p = nbformat.v4.new_code_cell('output_dir = "results"')
    p.metadata["tags"] = ["parameters"]
    marker = tmp_path / "sleeping"  # written by the cell (the run writes its notebook only at the end)
    nb.cells = [p, nbformat.v4.new_code_cell(f"import pathlib, time\npathlib.Path({str(marker)!r}).touch()\n"
                                             "time.sleep(60)")]
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / "notebooks" / "scorecard.ipynb")
    gen = tmp_path / "book" / "generated"
    gen.mkdir(parents=True)
    (gen / "scorecard.ipynb").write_text("previous")
    proc = subprocess.Popen([sys.executable, "-m", "tokenflow.cli", "reproduce", "--root", str(tmp_path),
                             "--no-build", "--only", "scorecard"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as at a terminal
    deadline = time.time() + 60
    while time.time() < deadline and not marker.exists():
        time.sleep(0.2)
    assert marker.exists(), "the notebook did not start"
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in out + err and err.strip().count("\n") == 0, err
    assert "interrupted; the previous book/generated is unchanged" in err
    assert (gen / "scorecard.ipynb").read_text() == "previous"
    assert not list(gen.glob(".*"))


def test_an_identical_copy_of_the_package_is_accepted(tiny):
    """A folder whose tokenflow/ has the same files as the running one (a non-editable install)."""
    import shutil

    import tokenflow

    shutil.copytree(rp.Path(tokenflow.__file__).resolve().parent, tiny / "tokenflow",
                    ignore=shutil.ignore_patterns("__pycache__"))
    bs.check_package(tiny)
    (tiny / "tokenflow" / "extra.py").write_text("x = 1\n")
    with pytest.raises(TokenflowError, match="other code"):
        bs.check_package(tiny)
# ----------------------------------------------------------------------------- --jobs (fakes)

@pytest.fixture
def fake_runs(tmp_path, monkeypatch):
    """Four notebooks (one of them ``results``, which must run last) executed by a fake
    ``_execute`` that records how many ran at once and in which order they started."""
    import threading
    import time

    nb = nbformat.v4.new_notebook()
    (tmp_path / "notebooks").mkdir()
    names = ["a", "b", "results", "c"]
    for n in names:
        nbformat.write(nb, tmp_path / "notebooks" / f"{n}.ipynb")
    monkeypatch.setattr(rp, "NOTEBOOKS", {n: ({}, {}) for n in names})
    log = {"active": 0, "max": 0, "started": [], "finished": [], "fail": set(), "expect": 1}
    lock, together = threading.Lock(), threading.Event()

    def fake_execute(src, dst, params, cwd, root):
        name = src.stem
        with lock:
            log["active"] += 1
            log["max"] = max(log["max"], log["active"])
            log["started"].append((name, set(log["finished"])))
            if log["active"] >= log["expect"]:
                together.set()
        if name != "results":  # the first notebooks wait (a while at most) for their companions
            together.wait(timeout=5.0)
        time.sleep(0.3)
        nbformat.write(nbformat.v4.new_notebook(), dst)
        with lock:
            log["active"] -= 1
            log["finished"].append(name)
        if name in log["fail"]:
            return {"ok": False, "cell": 1, "ename": "ValueError", "evalue": "boom"}
        return {"ok": True}

    monkeypatch.setattr(rp, "_execute", fake_execute)
    monkeypatch.setattr(rp, "check_package", lambda root: None)
    return tmp_path, names, log


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_jobs_run_notebooks_at_once_and_results_last(fake_runs, jobs):
    root, names, log = fake_runs
    log["expect"] = min(jobs, 3)
    times = rp.run_notebooks(root, jobs=jobs)
    assert log["max"] == min(jobs, 3)  # three notebooks can overlap; results waits for all of them
    assert list(times) == names  # the timing table keeps the notebooks' order
    assert all(t > 0.25 for t in times.values())
    started = dict(log["started"])
    assert started["results"] == {"a", "b", "c"}
    assert rp.last_status() == {n: "executed" for n in names}
    assert sorted(p.name for p in (root / "book" / "generated").glob("*.ipynb")) == sorted(f"{n}.ipynb" for n in names)
    # the per-notebook cache holds with jobs too
    log["started"].clear()
    rp.run_notebooks(root, jobs=jobs)
    assert log["started"] == [] and set(rp.last_status().values()) == {"reused"}


def test_jobs_failure_lets_running_notebooks_finish_and_keeps_them(fake_runs):
    root, names, log = fake_runs
    log["fail"].add("a")
    with pytest.raises(TokenflowError, match=r"a.ipynb failed in cell 1: ValueError: boom"):
        rp.run_notebooks(root, jobs=2)
    assert not (root / "book" / "generated").exists()  # nothing swapped in
    assert "results" not in [n for n, _ in log["started"]]  # nothing new after the failure
    log["fail"].clear()
    log["started"].clear()
    rp.run_notebooks(root, jobs=2)
    status = rp.last_status()
    assert status["b"] == "reused" and status["a"] == "executed"  # b ran beside a and was kept


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_jobs_must_be_a_positive_whole_number(fake_runs, bad):
    with pytest.raises(TokenflowError, match="jobs must be a whole number"):
        rp.run_notebooks(fake_runs[0], jobs=bad)


def test_cli_jobs_refuses_zero(capsys):
    from tokenflow.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "--jobs", "0"])
    assert exc.value.code == 2
    assert "--jobs/-j: must be a whole number >= 1" in capsys.readouterr().err


def test_a_warm_kernel_starts_each_notebook_as_a_new_kernel_would(tmp_path, monkeypatch):
    """Notebooks of one job slot share a kernel: nothing the first one sets reaches the second,
    and the executed copies are numbered from 1 as in a new kernel."""
    pytest.importorskip("papermill")
    (tmp_path / "notebooks").mkdir()
    first = ("import os, warnings\nimport matplotlib as mpl\nimport numpy as np\nimport pandas as pd\n"
             "import tokenflow.publish.book\nleaked = 1\nmpl.rcParams['font.size'] = 20\n"
             "mpl.rcParams['lines.markersize'] = 20\n"
             "pd.set_option('display.precision', 1)\nnp.set_printoptions(precision=2)\n"
             "warnings.simplefilter('error')\nos.environ['TF_LEAK'] = '1'\nos.chdir('/')\n"
             "from tokenflow.clearing import engine\nengine._POOL['x'] = 1\nprint(os.getpid())")
    second = ("import os, sys, warnings\nimport matplotlib as mpl\nimport numpy as np\nimport pandas as pd\n"
              "assert 'leaked' not in globals()\nassert 'tokenflow.publish.book' not in sys.modules\n"
              "import tokenflow.publish.book\nfrom tokenflow.publish import style\n"
              "snap = dict(mpl.rcParams)\nstyle.apply()\n"
              "assert dict(mpl.rcParams) == snap  # the house style is in place\n"
              "assert mpl.rcParams['font.size'] == 9 and mpl.rcParams['lines.markersize'] != 20\n"
              "assert pd.get_option('display.precision') == 6 and np.get_printoptions()['precision'] == 8\n"
              "assert not any(f[0] == 'error' and f[2] is Warning for f in warnings.filters)\n"
              "assert 'TF_LEAK' not in os.environ and os.getcwd() != '/'\n"
              "from tokenflow.clearing import engine\nassert not engine._POOL\n"
              "assert sys.modules['__main__'].__spec__ is None  # as in a new kernel (spawn reads it)\n"
              "print(os.getpid())")
    for name, code in (("first", first), ("second", second)):
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        params = nbformat.v4.new_code_cell('output_dir = "results"')
        params.metadata["tags"] = ["parameters"]
        nb.cells = [params, nbformat.v4.new_code_cell(code)]
        nbformat.write(nb, tmp_path / "notebooks" / f"{name}.ipynb")
    monkeypatch.setattr(rp, "NOTEBOOKS", {"first": ({}, {}), "second": ({}, {})})
    rp.run_notebooks(tmp_path, jobs=1)
    gen = tmp_path / "book" / "generated"
    pids = []
    for name in ("first", "second"):
        nb = nbformat.read(gen / f"{name}.ipynb", as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
        pids.append(code[-1].outputs[-1]["text"].strip())
    assert pids[0] == pids[1]  # the same kernel ran both
    for name in ("first", "second"):  # fresh: a new kernel for each (two light notebooks)
        nb = nbformat.read(tmp_path / "notebooks" / f"{name}.ipynb", as_version=4)
        nb.cells[-1].source = "import os\nprint(os.getpid())"
        nbformat.write(nb, tmp_path / "notebooks" / f"{name}.ipynb")
    rp.run_notebooks(tmp_path, jobs=1, fresh=True)
    fresh = [nbformat.read(gen / f"{n}.ipynb", as_version=4).cells[-1].outputs[-1]["text"].strip()
             for n in ("first", "second")]
    assert fresh[0] != fresh[1] and pids[0] not in fresh


def test_the_longest_notebooks_start_first(fake_runs):
    """Notebooks start longest first by their last execution (new ones before any), results last."""
    root, names, log = fake_runs
    rp.run_notebooks(root, jobs=1)
    state_file = root / bs.OUT / bs.STATE
    state = json.loads(state_file.read_text())
    for name, seconds in (("a", 1.0), ("b", 9.0), ("c", 5.0), ("results", 99.0)):
        state[name]["seconds"] = seconds
    state_file.write_text(json.dumps(state))
    log["started"].clear()
    rp.run_notebooks(root, jobs=1, force=True)
    assert [n for n, _ in log["started"]] == ["b", "c", "a", "results"]


# ------------------------------------------- issue 28: dead kernels, one run per folder, --only twice


def _project(root, name: str, code: str) -> None:
    """A project folder whose notebook ``name`` runs ``code`` (after the parameters cell)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    p = nbformat.v4.new_code_cell('output_dir = "results"')
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell(code)]
    (root / "notebooks").mkdir(exist_ok=True)
    nbformat.write(nb, root / "notebooks" / f"{name}.ipynb")


@pytest.mark.parametrize("how", ["import os\nos._exit(1)",
                                 pytest.param("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
                                              marks=pytest.mark.slow)])
def test_a_dying_kernel_is_a_failed_notebook_not_a_hang(tmp_path, how):
    """A cell that ends its kernel's process (warm kernels, the default): the run reports the
    notebook as failed within seconds, exit 2, one line; the previous book stays as it was."""
    import subprocess
    import sys
    import time

    pytest.importorskip("papermill")
    _project(tmp_path, "scorecard", "print('before')\n" + how)
    gen, html = tmp_path / "book" / "generated", tmp_path / "_build" / "html"
    gen.mkdir(parents=True)
    html.mkdir(parents=True)
    (gen / "scorecard.ipynb").write_text("previous")
    (html / "index.html").write_text("previous book")
    before = _snapshot(gen), _snapshot(html)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tokenflow.cli", "reproduce", "--root", str(tmp_path),
                           "--only", "scorecard", "--jobs", "1"], capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 2, proc.stderr
    assert "scorecard.ipynb failed" in proc.stderr and "kernel died" in proc.stderr
    assert "previous book/generated is unchanged" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr and proc.stderr.strip().count("\n") == 0
    assert (_snapshot(gen), _snapshot(html)) == before
    assert not list(tmp_path.rglob(".*.running.ipynb"))
    assert seconds < 60, seconds  # (a hang ran into the 120 s timeout above; about 3 s on an idle machine)


def _hold_lock(root):
    """Another process holding ``root``'s reproduce lock until its stdin closes."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "import sys\nfrom tokenflow.publish import build_state as bs\n"
                             f"with bs.project_lock({str(root)!r}):\n    print('held', flush=True)\n"
                             "    sys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_in_the_same_folder_is_refused_and_changes_nothing(fake_runs, capsys):
    root, names, log = fake_runs
    rp.run_notebooks(root, jobs=1)
    gen = root / "book" / "generated"
    before = _snapshot(gen)
    holder = _hold_lock(root)
    try:
        with pytest.raises(TokenflowError, match=rf"another tokenflow reproduce is running .*process "
                                                 rf"{holder.pid} holds the lock .*reproduce.lock"):
            rp.run_notebooks(root, jobs=1, force=True)
        with pytest.raises(TokenflowError, match=f"process {holder.pid}"):
            rp.build_book(root)
        from tokenflow.cli import main

        capsys.readouterr()
        assert main(["reproduce", "--root", str(root), "--no-build"]) == 2
        err = capsys.readouterr().err
        assert f"process {holder.pid}" in err and "Traceback" not in err
    finally:
        holder.communicate("")
    assert _snapshot(gen) == before and not (root / bs.STAGING).exists()
    log["started"].clear()
    rp.run_notebooks(root, jobs=1, force=True)  # the holder ended: the lock is free again
    assert len(log["started"]) == len(names)


def test_a_lock_left_by_a_dead_run_is_taken_over(fake_runs):
    import subprocess
    import sys

    root, names, log = fake_runs
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    lock = root / bs.LOCK
    lock.parent.mkdir(parents=True)
    lock.write_text(dead + "\n")  # what a killed run leaves (its OS lock ended with it)
    rp.run_notebooks(root, jobs=1)
    assert rp.last_status() == {n: "executed" for n in names}


def test_a_lock_that_cannot_be_taken_is_a_clear_error(fake_runs):
    root, names, log = fake_runs
    (root / bs.LOCK).mkdir(parents=True)  # a folder where the lock file belongs
    with pytest.raises(TokenflowError, match=r"cannot take the reproduce lock .*reproduce.lock: Is a directory"):
        rp.run_notebooks(root, jobs=1)
    assert log["started"] == [] and not (root / bs.STAGING).exists()


def test_only_a_name_given_twice_runs_once(fake_runs):
    root, names, log = fake_runs
    times = rp.run_notebooks(root, names=["a", "b", "a"], jobs=2)
    assert sorted(n for n, _ in log["started"]) == ["a", "b"] and list(times) == ["a", "b"]
    log["started"].clear()
    rp.run_notebooks(root, names="c", jobs=1)  # one name as a string: that notebook, not its letters
    assert [n for n, _ in log["started"]] == ["c"]
    for bad in (5, [1], {"a": 1}, ["a", None]):
        with pytest.raises(TokenflowError, match="notebook names must be a list of names"):
            rp.run_notebooks(root, names=bad, jobs=1)


def _waiting_project(tmp_path):
    """A project whose one notebook (scorecard) touches ``marker`` and then waits (up to 60 s) for
    ``release`` to exist: a run that holds the folder while a test acts on it."""
    marker, release = tmp_path / "running", tmp_path / "release"
    _project(tmp_path, "scorecard", f"import pathlib, time\npathlib.Path({str(marker)!r}).touch()\n"
                                    f"t = time.time()\nwhile not pathlib.Path({str(release)!r}).exists() "
                                    "and time.time() - t < 60:\n    time.sleep(0.1)\nprint('done')")
    return marker, release


@pytest.mark.slow
def test_two_reproduce_commands_in_one_folder(tmp_path):
    """The second `tokenflow reproduce` started while the first runs a notebook is refused at
    once (exit 2, one line naming the first one's pid); the first finishes as if alone."""
    import subprocess
    import sys
    import time

    pytest.importorskip("papermill")
    marker, release = _waiting_project(tmp_path)
    cmd = [sys.executable, "-m", "tokenflow.cli", "reproduce", "--root", str(tmp_path), "--no-build", "--only",
           "scorecard", "scorecard"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not marker.exists():
        time.sleep(0.1)
    assert marker.exists(), "the first run did not start its notebook"
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert second.returncode == 2 and "Traceback" not in second.stderr
    assert f"another tokenflow reproduce is running in {tmp_path} (process {first.pid} holds the lock" in second.stderr
    release.touch()
    out, err = first.communicate(timeout=90)
    assert first.returncode == 0, err
    assert "0 of 1 notebook(s) reused" in out and "[2/" not in out  # (named twice: run once)
    gen = tmp_path / "book" / "generated"
    assert "done" in (gen / "scorecard.ipynb").read_text()
    assert not list(tmp_path.rglob(".*.running.ipynb")) and not (tmp_path / bs.STAGING).exists()


def test_the_lock_is_reentrant_in_one_thread_only(tmp_path):
    import os
    import threading

    seen = []
    with bs.project_lock(tmp_path) as path:
        with bs.project_lock(tmp_path):  # reproduce -> run_notebooks -> build_book
            pass

        def other():
            try:
                with bs.project_lock(tmp_path):
                    seen.append("taken")
            except TokenflowError as exc:
                seen.append(str(exc))

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert path.read_text().strip() == str(os.getpid())
    assert len(seen) == 1 and "another tokenflow reproduce is running" in seen[0]
    with bs.project_lock(tmp_path):  # released
        pass


@pytest.mark.slow
def test_a_killed_run_keeps_the_folder_locked_until_its_runner_stops(tmp_path):
    """SIGKILL to `tokenflow reproduce` while a notebook runs: its runner finishes that notebook
    and holds the lock until then, so a new run is refused (naming the ended process) instead
    of sharing the staging folder with it; afterwards a run succeeds and nothing half-written
    remains."""
    import subprocess
    import sys
    import time

    pytest.importorskip("papermill")
    marker, release = _waiting_project(tmp_path)
    cmd = [sys.executable, "-m", "tokenflow.cli", "reproduce", "--root", str(tmp_path), "--no-build", "--only",
           "scorecard"]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not marker.exists():
        time.sleep(0.1)
    assert marker.exists(), "the first run did not start its notebook"
    first.kill()
    first.wait()
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert second.returncode == 2 and f"a notebook runner of process {first.pid}, which has ended" in second.stderr
    release.touch()
    deadline, free = time.time() + 60, False
    while time.time() < deadline and not free:
        try:
            with bs.project_lock(tmp_path):
                free = True
        except TokenflowError:
            time.sleep(0.2)
    assert free, "the runner of the killed run did not stop"
    third = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert third.returncode == 0, third.stderr
    assert "done" in (tmp_path / "book" / "generated" / "scorecard.ipynb").read_text()
    assert not list(tmp_path.rglob(".*.running.ipynb")) and not (tmp_path / bs.STAGING).exists()
