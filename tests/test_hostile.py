"""Hostile-input corpus (issue 9): scenario files, API arguments, CLI arguments, output
targets, sweep specs and interruptions.  Every case asserts the exception class or the
exit code, the key words of the message, and that no Python traceback reaches the user.

Failure messages start with a tag (TRACEBACK, RAW-EXCEPTION, ACCEPTED, HANG,
DAMAGED-FILE, WRONG-CODE) so that a run against an older package can be counted by
kind.  Cases of the solver side (engine rewrite: argument checks, huge scales, export of
infeasible models, solution checks, damaged result files) are plain tests since it landed.

Issue 15 (second round) adds the serving layer (queueing, simulate, traces: every argument,
numpy scalars, iteration and size bounds, a fuzz over every argument), scheduler addresses
(schemes, silent listeners, web servers, no workers), output paths (symlink loops, /proc)
and reproduce's arguments; the transactional book and the archive checks are in
tests/test_reproduce.py and tests/test_archive.py, the Market's in tests/test_hostile_market.py.
"""

from __future__ import annotations

import copy
import errno
import importlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import BASE

import tokenflow as tf
from tokenflow.cli import main

PY = sys.executable
BOMB = ('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
        + "".join(f"{n}: &{n} [" + ",".join([f"*{p}"] * 9) + "]\n" for p, n in zip("abcdefgh", "bcdefghi"))
        + "title: *i\n")


def text_of(doc: dict) -> str:
    return yaml.safe_dump(doc, sort_keys=False)


BASE_TEXT = text_of(BASE)


def scenario_error(path_or_obj, *needles: str, exc: type = None) -> str:
    """Load and expect a ScenarioError (or ``exc``) whose message holds every needle."""
    return api_error(lambda: tf.load_scenario(path_or_obj), *needles, exc=exc or tf.ScenarioError)


def api_error(fn, *needles: str, exc: type = None) -> str:
    exc = exc or tf.TokenflowError
    try:
        fn()
    except tf.TokenflowError as e:
        assert isinstance(e, exc), f"WRONG-CLASS: {type(e).__name__}: {e}"
        msg = str(e)
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"RAW-EXCEPTION: {type(e).__name__}: {e}")
    else:
        pytest.fail("ACCEPTED: the call succeeded")
    for n in needles:
        assert n.lower() in msg.lower(), f"message lacks {n!r}: {msg}"
    return msg


def cli(argv: list[str], capsys, code: int, *needles: str) -> str:
    """Run tokenflow.cli.main in this process; check exit code, stderr words, no traceback."""
    try:
        got = main([str(a) for a in argv])
    except SystemExit as e:  # argparse
        got = e.code
    except BaseException as e:  # noqa: BLE001
        pytest.fail(f"TRACEBACK: main raised {type(e).__name__}: {e}")
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, f"TRACEBACK: {err}"
    assert got == code, f"WRONG-CODE {got} (expected {code}): {err[-500:]}"
    for n in needles:
        assert n.lower() in err.lower(), f"stderr lacks {n!r}: {err}"
    return err


def run(args: list[str], *, timeout: float = 120, preexec=None, cwd=None) -> subprocess.CompletedProcess:
    """Run the CLI in a subprocess (hangs, resource limits, signals)."""
    try:
        p = subprocess.run([PY, "-m", "tokenflow.cli", *map(str, args)], capture_output=True, text=True,
                           timeout=timeout, preexec_fn=preexec, cwd=cwd)
    except subprocess.TimeoutExpired:
        pytest.fail(f"HANG: no answer within {timeout} s")
    assert "Traceback" not in p.stdout + p.stderr, f"TRACEBACK: {p.stderr[-800:]}"
    return p


def write_text(tmp_path: Path, text: str | bytes, name: str = "bad.yaml") -> Path:
    p = tmp_path / name
    (p.write_bytes if isinstance(text, bytes) else p.write_text)(text)
    return p


def no_temp_files(folder: Path) -> None:
    left = [p.name for p in folder.iterdir() if ".tmp" in p.name]
    assert not left, f"DAMAGED-FILE: temporary files left behind: {left}"


# =========================================================================== scenario files

FILE_CASES = {
    # id: (file content, needles)
    "not_utf8": (b"name: \xff\xfe tiny\n" + BASE_TEXT.encode(), ["not UTF-8", "line 1"]),
    "nul_byte": (BASE_TEXT.replace("name: tiny", "name: ti\x00ny").encode(), ["NUL"]),
    "deep_nesting": ("x: " + "[" * 100_000, ["nested more than"]),
    "non_string_key": (BASE_TEXT + "? [1, 2]\n: 3\n", ["key must be text"]),
    "range_scalar": (BASE_TEXT.replace("pue: 1.0", "pue: {value: 1.0, range: 5}"), ["pue.range", "[low, high]"]),
    "range_one": (BASE_TEXT.replace("pue: 1.0", "pue: {value: 1.0, range: [1.3]}"), ["pue.range"]),
    "range_reversed": (BASE_TEXT.replace("pue: 1.0", "pue: {value: 1.0, range: [2, 1]}"), ["low <= high"]),
    "range_text": (BASE_TEXT.replace("pue: 1.0", "pue: {value: 1.0, range: [a, b]}"), ["pue.range"]),
    "recursive_alias": ("a: &a [*a]\n", ["recursive alias"]),
    "node_called_no": (BASE_TEXT.replace("  A:\n", "  no:\n").replace("a: A", "a: 'no'"),
                       ["'no'", "boolean", "quotes"]),
    "node_called_on_in_link": (BASE_TEXT.replace("  A:\n", "  'on':\n").replace("a: A", "a: on"),
                               ["links[0].a", "boolean", "quotes"]),
    "ids_1_and_quoted_1": (BASE_TEXT.replace("  A:\n", "  1:\n").replace("  B:\n", "  '1':\n")
                           .replace("a: A", "a: 1").replace("b: B", "b: '1'"), ["number", "quotes", "'1'"]),
    "workload_id_number": (BASE_TEXT.replace("  w:\n", "  7:\n"), ["key 7", "quotes"]),
    "pue_half": (BASE_TEXT.replace("pue: 1.0", "pue: 0.5"), ["parameters.pue", "at least 1"]),
    "latitude_200": (BASE_TEXT.replace("lat: 35.0", "lat: 200"), ["nodes.A.lat", "-90..90"]),
    "longitude_-200": (BASE_TEXT.replace("lon: -100.0", "lon: -200", 1), ["nodes.A.lon", "-180..180"]),
    "ai_share_above_1": (BASE_TEXT.replace("ai_share: 1.0", "ai_share: 1.5"), ["ai_share", "(0, 1]"]),
    "route_factor_below_1": (BASE_TEXT.replace("route_factor: 1.0", "route_factor: 0.5"), ["route_factor"]),
    "paths_fraction": (BASE_TEXT.replace("paths_per_pair: 3", "paths_per_pair: 2.5"), ["paths_per_pair", "whole"]),
    "number_as_text": (BASE_TEXT.replace("capacity_mw: 10.0", "capacity_mw: '1e3'", 1), ["capacity_mw", "number"]),
    "number_as_yes": (BASE_TEXT.replace("capacity_mw: 10.0", "capacity_mw: yes", 1), ["capacity_mw", "number"]),
    "infinite_value": (BASE_TEXT.replace("capacity_mw: 10.0", "capacity_mw: .inf", 1), ["capacity_mw", "finite"]),
    "integer_overflow": (BASE_TEXT.replace("capacity_mw: 10.0", "capacity_mw: 1" + "0" * 400, 1),
                         ["capacity_mw", "finite"]),
    "title_is_list": (BASE_TEXT.replace("name: tiny", "name: tiny\ntitle: [1, 2]"), ["title", "text"]),
    "source_is_mapping": (BASE_TEXT.replace("pue: 1.0", "pue: {value: 1.0, source: {a: 1}}"), ["pue.source"]),
    "unknown_value_key": (BASE_TEXT.replace("pue: 1.0", "pue: {value: 1.0, sorce: x}"), ["pue.sorce", "unknown"]),
    "no_capacity": (BASE_TEXT.replace("capacity_mw: 10.0", "capacity_mw: 0.0"), ["no node has compute capacity"]),
    "empty_file": ("", ["top level"]),
    "scalar_document": ("5\n", ["top level"]),
    "node_name_list": (BASE_TEXT.replace("  A:\n", "  A:\n    name: [x]\n"), ["nodes.A.name", "text"]),
    "empty_key": (BASE_TEXT.replace("  A:\n", "  A:\n    ? \n    : 3\n"), ["empty mapping key"]),
}


@pytest.mark.parametrize("case", list(FILE_CASES))
def test_bad_scenario_file(tmp_path, case):
    content, needles = FILE_CASES[case]
    path = write_text(tmp_path, content)
    t0 = time.perf_counter()
    scenario_error(path, "bad.yaml", *needles)
    assert time.perf_counter() - t0 < 10, "HANG: took more than 10 s to refuse"


def test_alias_bomb_through_title_fails_fast(tmp_path):
    path = write_text(tmp_path, BASE_TEXT.replace("name: tiny\n", "") + BOMB)
    assert len(path.read_bytes()) < 2048 + len(BASE_TEXT)
    p = run(["solve", path], timeout=30)
    assert p.returncode == 2 and "alias" in p.stderr and "bad.yaml" in p.stderr


@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
def test_special_files_are_refused_not_read_forever(tmp_path, special):
    if special == "fifo":
        special = tmp_path / "pipe.yaml"
        os.mkfifo(special)
    p = run(["solve", special], timeout=30)
    assert p.returncode == 2 and "not a regular file" in p.stderr


def test_file_too_large(tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as fh:
        fh.truncate(9 * 1024 * 1024)  # sparse: instant
    scenario_error(path, "huge.yaml", "bytes")


def test_folder_without_scenario_yaml(tmp_path):
    scenario_error(tmp_path, "not found")


def test_byte_order_mark_is_fine(tmp_path):
    path = write_text(tmp_path, "\ufeff" + BASE_TEXT, "bom.yaml")
    assert tf.load_scenario(path).node_ids == ["A", "B"]


@pytest.mark.parametrize("arg", [None, 5, "", 3.5, ["us5"]])
def test_load_scenario_bad_argument(arg):
    scenario_error(arg, "load_scenario", "scenario name")


def test_load_scenario_given_a_scenario(us5):
    scenario_error(us5, "loaded already")


def test_quoted_ids_are_accepted(tmp_path):
    text = BASE_TEXT.replace("  A:\n", "  'no':\n").replace("a: A", "a: 'no'")
    s = tf.load_scenario(write_text(tmp_path, text, "ok.yaml"))
    assert "no" in s.node_ids and list(s.links["a"]) == ["no"]


# =========================================================================== Scenario objects

REPLACE_CASES = {
    "latitude_200": ({"nodes": {"dallas": {"lat": 200}}}, ["nodes.dallas.lat", "-90..90"]),
    "pue_half": ({"params": {"pue": 0.5}}, ["parameters.pue", "at least 1"]),
    "node_pue_half": ({"nodes": {"dallas": {"pue": 0.5}}}, ["nodes.dallas.pue", "at least 1"]),
    "param_text": ({"params": {"ai_share": "abc"}}, ["ai_share", "expected a number"]),
    "param_bool": ({"params": {"route_factor": True}}, ["route_factor", "expected a number"]),
    "param_nan": ({"params": {"route_factor": float("nan")}}, ["route_factor", "finite"]),
    "node_text": ({"nodes": {"dallas": {"capacity_mw": "lots"}}}, ["capacity_mw", "expected a number"]),
    "workload_negative": ({"workloads": {"chat": {"energy_kwh_per_mtok": -1}}}, ["energy_kwh_per_mtok"]),
    "link_zero": ({"links": {"chicago--dallas": {"bandwidth_gbps": 0}}}, ["bandwidth_gbps", "positive"]),
    "demand_text": ({"demand": {"dallas": {"chat": "x"}}}, ["demand.dallas.chat", "number"]),
    "demand_negative": ({"demand": {"dallas": {"chat": -5}}}, ["demand.dallas.chat", "non-negative"]),
    "params_not_mapping": ({"params": [("pue", 1.2)]}, ["params must be a mapping"]),
    "node_fields_not_mapping": ({"nodes": {"dallas": 5}}, ["nodes.dallas must be a mapping"]),
    "unknown_node": ({"nodes": {"paris": {"lat": 48.8}}}, ["unknown node 'paris'"]),
    "unknown_field": ({"workloads": {"chat": {"colour": 1}}}, ["unknown workload field 'colour'"]),
    "name_not_text": ({"nodes": {"dallas": {"name": 5}}}, ["nodes.dallas.name", "text"]),
}


@pytest.mark.parametrize("case", list(REPLACE_CASES))
def test_replace_validates_like_the_loader(us5, case):
    kwargs, needles = REPLACE_CASES[case]
    api_error(lambda: us5.replace(**kwargs), *needles, exc=tf.ScenarioError)


def test_replace_reports_all_problems_at_once(us5):
    with pytest.raises(tf.ScenarioError) as info:
        us5.replace(params={"pue": 0.5, "ai_share": 2}, nodes={"dallas": {"lat": 200}})
    assert len(info.value.problems) == 3


def test_constructor_validates(us5):
    import dataclasses

    nodes = us5.nodes.copy()
    nodes.loc["dallas", "lat"] = 200.0
    api_error(lambda: dataclasses.replace(us5, nodes=nodes), "nodes.dallas.lat", "-90..90", exc=tf.ScenarioError)
    params = {**us5.params, "pue": 0.5}
    api_error(lambda: dataclasses.replace(us5, params=params), "parameters.pue", exc=tf.ScenarioError)
    links = us5.links.copy()
    links.loc["chicago--dallas", "b"] = "paris"
    api_error(lambda: dataclasses.replace(us5, links=links), "unknown node 'paris'", exc=tf.ScenarioError)
    numbered = us5.nodes.rename(index={"dallas": 1})
    api_error(lambda: dataclasses.replace(us5, nodes=numbered), "node id", "number", exc=tf.ScenarioError)


def test_synthetic_networks_still_validate():
    s = tf.synthetic_network(6, seed=3)
    assert len(s.node_ids) == 6


# =========================================================================== API arguments (engine side)

def ENGINE(f):  # noqa: N802 - was an xfail mark until the engine's argument checks landed
    return f


@ENGINE
def test_solve_given_a_name():
    api_error(lambda: tf.solve("us5"), "scenario")


@ENGINE
def test_solve_transfer_aware_text(us5):
    api_error(lambda: tf.solve(us5, transfer_aware="yes"), "transfer_aware")


@ENGINE
def test_solve_latency_list(us5):
    api_error(lambda: tf.solve(us5, latency_limits_ms=[15, 100]), "latency_limits_ms")


@ENGINE
def test_value_of_lost_load_scalar_applies_to_all(us5):
    r = tf.solve(us5, demand_scale=1000, value_of_lost_load=1000.0)
    assert float(r.dataset["unserved"].sum()) > 0


@ENGINE
def test_max_demand_scale_given_a_name():
    api_error(lambda: tf.max_demand_scale("us5"), "scenario")


@ENGINE
def test_export_lp_nan_scale(us5, tmp_path):
    api_error(lambda: tf.export_lp(us5, tmp_path / "x.mps", demand_scale=float("nan")), "demand_scale")
    assert not (tmp_path / "x.mps").exists()


def test_solve_bad_scale_and_formulation(us5):
    api_error(lambda: tf.solve(us5, demand_scale="ten"), "demand_scale")
    api_error(lambda: tf.solve(us5, demand_scale=-1), "demand_scale")
    api_error(lambda: tf.solve(us5, formulation="simplex"), "formulation")


# =========================================================================== CLI arguments

CLI_CASES = {
    "scale_nan": (["solve", "us5", "--demand-scale", "nan"], 2, ["demand scale", "finite"]),
    "scale_negative": (["solve", "us5", "--demand-scale", "-1"], 2, ["demand scale"]),
    "scale_inf": (["solve", "us5", "--demand-scale", "inf"], 2, ["demand scale"]),
    "scale_text": (["solve", "us5", "--demand-scale", "ten"], 2, ["demand scale", "number"]),
    "export_scale_nan": (["export-lp", "us5", "x.mps", "--demand-scale", "nan"], 2, ["demand scale"]),
    "export_scale_negative": (["export-lp", "us5", "x.mps", "--demand-scale", "-3"], 2, ["demand scale"]),
    "latency_text": (["solve", "us5", "--latency", "chat=abc"], 2, ["--latency chat", "number"]),
    "latency_no_equals": (["solve", "us5", "--latency", "chat"], 2, ["WORKLOAD=MS"]),
    "latency_nan": (["max-scale", "us5", "--latency", "chat=nan"], 2, ["--latency chat", "finite"]),
    "latency_zero": (["solve", "us5", "--latency", "chat=0"], 2, ["--latency chat"]),
    "latency_unknown_workload": (["solve", "us5", "--latency", "video=10"], 2, ["unknown workload 'video'"]),
    "unknown_scenario": (["solve", "us7"], 2, ["unknown scenario 'us7'"]),
    "missing_file": (["max-scale", "nope/scenario.yaml"], 2, ["not found"]),
    "workers_negative": (["sweep", "spec.yaml", "--workers", "-1"], 2, ["--workers", ">= 0"]),
    "workers_text": (["sweep", "spec.yaml", "--workers", "many"], 2, ["--workers", "whole number"]),
    "max_points_zero": (["sweep", "spec.yaml", "--max-points", "0"], 2, ["--max-points"]),
    "scheduler_nonsense": (["sweep", "spec.yaml", "--scheduler", "nonsense"], 2, ["--scheduler", "address"]),
    "unknown_command": (["solvee", "us5"], 2, ["invalid choice"]),
    "infeasible": (["solve", "us5", "--demand-scale", "500"], 3, ["infeasible", "s* ="]),
    "export_bad_suffix": (["export-lp", "us5", "model.txt"], 2, [".mps or .lp"]),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_arguments(case, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_text(tmp_path, "scenario: us5\ngrid: {demand_scale: [1, 2]}\n", "spec.yaml")
    argv, code, needles = CLI_CASES[case]
    cli(argv, capsys, code, *needles)
    assert not any(p.suffix in {".mps", ".lp", ".nc"} for p in tmp_path.iterdir())


def test_cli_huge_scale_is_infeasible_not_solver_failure(capsys):
    cli(["solve", "us5", "--demand-scale", "1e16"], capsys, 3, "infeasible", "s* =")


def test_cli_export_lp_at_infeasible_scale(capsys, tmp_path):
    out = tmp_path / "x.mps"
    cli(["export-lp", "us5", out, "--demand-scale", "500"], capsys, 3, "infeasible")
    assert not out.exists()


def test_tiny_coefficients_are_not_reported_optimal(tmp_path):
    doc = copy.deepcopy(BASE)
    doc["workloads"]["w"]["payload_bytes_per_token"] = 1e-7
    doc["parameters"]["link_bandwidth_gbps"] = 1e-12
    doc["nodes"]["A"]["capacity_mw"] = 0.0
    doc["nodes"]["A"]["demand_mtok_per_h"] = {"w": 100.0}
    s = tf.load_scenario(write_text(tmp_path, text_of(doc)))
    try:
        r = tf.solve(s)
    except (tf.SolverError, tf.InfeasibleMarketError):
        return
    assert float(r.link_utilization.max()) <= 1 + 1e-6, "ACCEPTED: link over capacity reported optimal"


# =========================================================================== outputs

def test_export_lp_missing_folder(capsys, tmp_path):
    err = cli(["export-lp", "us5", tmp_path / "missing" / "x.mps"], capsys, 5, "folder", "does not exist")
    assert "wrote" not in err


def test_export_lp_to_a_directory(capsys, tmp_path):
    (tmp_path / "d.mps").mkdir()
    cli(["export-lp", "us5", tmp_path / "d.mps"], capsys, 5, "is a directory")


def test_solve_out_missing_folder_fails_before_solving(capsys, tmp_path, monkeypatch):
    import tokenflow.clearing.market as market

    monkeypatch.setattr(market, "solve", lambda *a, **k: pytest.fail("solved before checking --out"))
    cli(["solve", "us5", "--out", tmp_path / "no" / "r.nc"], capsys, 5, "does not exist")


def test_solve_out_is_a_directory(capsys, tmp_path):
    cli(["solve", "us5", "--out", tmp_path], capsys, 5, "is a directory")


def test_export_lp_writes_whole_file(capsys, tmp_path):
    out = tmp_path / "m.mps"
    assert main(["export-lp", "us5", str(out)]) == 0
    assert out.read_text().rstrip().endswith("ENDATA")
    no_temp_files(tmp_path)


def _fsize_limit(nbytes: int):
    def pre():
        import resource
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return pre


def test_disk_full_keeps_existing_netcdf(tmp_path, capsys):
    out = tmp_path / "r.nc"
    assert main(["solve", "us5", "--out", str(out)]) == 0  # the existing file (in this process: no limit needed)
    before = out.read_bytes()
    p = run(["solve", "us5", "--demand-scale", "2", "--out", out], preexec=_fsize_limit(8 * 1024))
    assert p.returncode == 5, f"WRONG-CODE {p.returncode}: {p.stderr}"
    assert "file-size limit" in p.stderr and "r.nc" in p.stderr
    assert out.read_bytes() == before, "DAMAGED-FILE: existing result replaced"
    no_temp_files(tmp_path)
    tf.MarketResult.from_netcdf(out)


def test_disk_full_export_lp(tmp_path):
    out = tmp_path / "m.mps"
    p = run(["export-lp", "us20", out], preexec=_fsize_limit(8 * 1024))
    assert p.returncode == 5, f"WRONG-CODE {p.returncode}: {p.stderr}"
    assert "file-size limit" in p.stderr
    assert not out.exists(), "DAMAGED-FILE: truncated MPS left in place"
    no_temp_files(tmp_path)


def test_atomic_write_causes(tmp_path, monkeypatch):
    from tokenflow.core.errors import OutputError
    from tokenflow.core.io import atomic_write

    target = tmp_path / "t.txt"
    target.write_text("old")

    def fail_with(code):
        def write(tmp):
            tmp.write_text("partial")
            raise OSError(code, os.strerror(code))
        return write

    api_error(lambda: atomic_write(target, fail_with(errno.ENOSPC)), "t.txt", "disk full", exc=OutputError)
    api_error(lambda: atomic_write(target, fail_with(errno.EFBIG)), "file-size limit", exc=OutputError)
    api_error(lambda: atomic_write(target, fail_with(errno.EACCES)), "permission denied", exc=OutputError)
    monkeypatch.setattr(os, "replace", lambda a, b: (_ for _ in ()).throw(PermissionError(errno.EPERM, "no")))
    api_error(lambda: atomic_write(target, lambda tmp: tmp.write_text("new")), "permission denied", exc=OutputError)
    monkeypatch.undo()
    assert target.read_text() == "old"
    no_temp_files(tmp_path)


def test_atomic_write_interrupted_leaves_target(tmp_path):
    from tokenflow.core.io import atomic_write

    target = tmp_path / "t.txt"
    target.write_text("old")

    def write(tmp):
        tmp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, write)
    assert target.read_text() == "old"
    no_temp_files(tmp_path)


def test_truncated_model_file_is_refused(tmp_path):
    from tokenflow.core.errors import OutputError
    from tokenflow.core.io import atomic_write, verify_model_file

    api_error(lambda: atomic_write(tmp_path / "m.mps", lambda tmp: tmp.write_text("NAME x\nROWS\n"),
                                   verify=verify_model_file), "incomplete", "ENDATA", exc=OutputError)
    assert not (tmp_path / "m.mps").exists()


# =========================================================================== sweep specs

SPEC_CASES = {
    "grid_scalar": ({"scenario": "us5", "grid": 5}, ["grid"]),
    "grid_value_scalar": ({"scenario": "us5", "grid": {"demand_scale": 5}}, ["grid.demand_scale", "list"]),
    "grid_empty_list": ({"scenario": "us5", "grid": {"demand_scale": []}}, ["grid.demand_scale"]),
    "points_empty": ({"scenario": "us5", "points": []}, ["points must be a non-empty list"]),
    "points_not_mappings": ({"scenario": "us5", "points": [5]}, ["points"]),
    "samples_n_text": ({"scenario": "us5", "samples": {"n": "x", "ranges": {"demand_scale": [1, 2]}}},
                       ["samples.n", "whole number"]),
    "samples_no_ranges": ({"scenario": "us5", "samples": {"n": 3}}, ["ranges"]),
    "samples_range_one": ({"scenario": "us5", "samples": {"n": 3, "ranges": {"demand_scale": [1]}}},
                          ["ranges.demand_scale", "[low, high]"]),
    "samples_range_text": ({"scenario": "us5", "samples": {"n": 3, "ranges": {"demand_scale": ["a", "b"]}}},
                           ["ranges.demand_scale"]),
    "transfer_aware_text": ({"scenario": "us5", "grid": {"transfer_aware": ["no", "yes"]}},
                            ["transfer_aware", "true or false"]),
    "scale_text": ({"scenario": "us5", "grid": {"demand_scale": ["ten"]}}, ["demand_scale", "number"]),
    "fixed_not_mapping": ({"scenario": "us5", "grid": {"demand_scale": [1]}, "fixed": 5}, ["fixed"]),
    "fixed_bad_value": ({"scenario": "us5", "grid": {"demand_scale": [1]}, "fixed": {"latency.chat": "fast"}},
                        ["latency.chat", "number"]),
    "unknown_input": ({"scenario": "us5", "grid": {"nonsense": [1]}}, ["unknown input"]),
    "grid_and_points": ({"scenario": "us5", "grid": {"demand_scale": [1]}, "points": [{}]}, ["exactly one"]),
    "evaluate_unknown": ({"scenario": "us5", "points": [{}], "evaluate": "everything"}, ["evaluate"]),
    "scenario_not_text": ({"scenario": [1], "points": [{}]}, ["scenario"]),
    "duplicate_grid_values": ({"scenario": "us5", "grid": {"demand_scale": [1, 1]}}, ["repeat"]),
    "too_many_points": ({"scenario": "us5", "grid": {f"latency.{w}": list(range(1, 1001))
                                                     for w in ("chat", "image", "code_review", "batch_training")}},
                        ["1,000,000,000,000 points", "max_points"]),
    "max_points_small": ({"scenario": "us5", "grid": {"demand_scale": [1, 2, 3]}, "max_points": 2},
                         ["3 points", "max_points = 2"]),
    "max_points_text": ({"scenario": "us5", "points": [{}], "max_points": "many"}, ["max_points"]),
    "not_a_mapping": ([1, 2], ["sweep spec is a mapping"]),
}


@pytest.mark.parametrize("case", list(SPEC_CASES))
def test_bad_sweep_spec(case, tmp_path, capsys, monkeypatch):
    sweep_mod = importlib.import_module("tokenflow.studies.sweep")

    spec, needles = SPEC_CASES[case]
    path = write_text(tmp_path, text_of(spec), "spec.yaml")
    out = tmp_path / "out.nc"
    monkeypatch.setattr(sweep_mod, "_dispatch", lambda *a, **k: pytest.fail("ACCEPTED: points were solved"))
    t0 = time.perf_counter()
    cli(["sweep", path, "--workers", "0", "--out", out], capsys, 2, *needles)
    assert time.perf_counter() - t0 < 20, "HANG: spec check took more than 20 s"
    assert not out.exists()


def test_spec_with_numeric_key_and_bomb(tmp_path, capsys):
    path = write_text(tmp_path, "scenario: us5\ngrid:\n  1: [1, 2]\n", "spec.yaml")
    cli(["sweep", path, "--workers", "0"], capsys, 2, "spec.yaml", "key 1", "quotes")
    path = write_text(tmp_path, "scenario: us5\npoints: [{}]\n" + BOMB.replace("title", "fixed"), "spec.yaml")
    cli(["sweep", path, "--workers", "0"], capsys, 2, "alias")


def test_max_points_option_raises_the_limit(tmp_path, capsys):
    path = write_text(tmp_path, text_of({"scenario": "us5", "grid": {"demand_scale": [1, 2, 3]},
                                         "max_points": 2}), "spec.yaml")
    out = tmp_path / "s.nc"
    cli(["sweep", path, "--workers", "0", "--max-points", "3", "--out", out], capsys, 0)
    assert out.exists()


def test_sweep_api_arguments(us5):
    api_error(lambda: tf.sweep(us5, grid={"demand_scale": [1]}, n_workers=-1, progress=False), "n_workers",
              exc=tf.ScenarioError)
    api_error(lambda: tf.sweep(us5, grid={"demand_scale": 5}, n_workers=0, progress=False), "must be a list")
    api_error(lambda: tf.sweep(us5, ranges={"demand_scale": (1, 2)}, n_samples=10**7, n_workers=0,
                               progress=False), "max_points")
    api_error(lambda: tf.sweep(us5, points=[{"transfer_aware": "no"}], n_workers=0, progress=False),
              "transfer_aware")
    api_error(lambda: tf.sweep(us5, grid={1: [1]}, n_workers=0, progress=False), "input names are text")


def test_partly_failed_sweep_is_marked_incomplete(tmp_path, capsys):
    import xarray as xr

    path = write_text(tmp_path, text_of({"scenario": "us5", "points": [{"demand_scale": 5},
                                                                        {"param.ai_share": -1}]}), "spec.yaml")
    out = tmp_path / "s.nc"
    cli(["sweep", path, "--workers", "0", "--out", out], capsys, 6, "incomplete", "1 of 2")
    with xr.open_dataset(out) as ds:
        assert ds.attrs["complete"] == 0 and ds.attrs["n_failed"] == 1
        assert list(ds["status"].values) == ["ok", "error"]


def test_complete_sweep_is_marked_complete(us5, tmp_path):
    from tokenflow.studies.sweep import write_sweep

    ds = tf.sweep(us5, grid={"demand_scale": [5, 500]}, n_workers=0, progress=False)
    assert ds.attrs["complete"] == 1 and ds.attrs["n_failed"] == 0 and ds.attrs["n_infeasible"] == 1
    import xarray as xr

    with xr.open_dataset(write_sweep(ds, tmp_path / "s.nc")) as back:
        assert back.attrs["complete"] == 1


def _kill_own_worker(s, point):
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.slow
def test_killed_pool_workers_mark_the_sweep_incomplete(us5):
    ds = tf.sweep(us5, points=[{"demand_scale": 5}], evaluate=_kill_own_worker, n_workers=1, progress=False)
    assert ds.attrs["complete"] == 0 and ds.attrs["n_failed"] == 1
    assert "worker failed" in str(ds["message"].values[0])


# =========================================================================== interruption

# 10,000 points (minutes of work): the signal must arrive while the sweep is still solving,
# however fast the engine's re-solves become
INTERRUPT_SPEC = {"scenario": "us20", "grid": {"demand_scale": [float(x) for x in np.linspace(1, 30, 400)],
                                               "scale.bandwidth": [float(x) for x in np.linspace(0.5, 2.0, 25)]}}


@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"),
                                             (signal.SIGTERM, 143, "terminated")])
@pytest.mark.parametrize("workers", ["0", "2"])
def test_interrupted_sweep_writes_nothing(tmp_path, sig, code, word, workers):
    """In its own process or on a pool of workers: Ctrl-C (SIGINT to the whole process group,
    workers included, as a terminal sends it) or SIGTERM stops the sweep cleanly, writes
    nothing and leaves the previous file."""
    spec = write_text(tmp_path, text_of(INTERRUPT_SPEC), "spec.yaml")
    out = tmp_path / "s.nc"
    out_before = b"previous results"
    out.write_bytes(out_before)
    proc = subprocess.Popen([PY, "-m", "tokenflow.cli", "sweep", str(spec), "--workers", workers, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # (a shell's
    # background job ignores SIGINT, and so would the sweep started from it; a terminal does not)
    # wait until the sweep is running (imports under load can take long), then let it solve a little
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    deadline, started = time.monotonic() + 120, ""
    while "running sweep" not in started and time.monotonic() < deadline and proc.poll() is None:
        if sel.select(timeout=1):
            started += proc.stderr.readline()
    assert "running sweep" in started, f"sweep did not start: {started}"
    time.sleep(1)
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    try:
        stdout, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("HANG: sweep did not stop after the signal")
    stderr = started + stderr
    assert "Traceback" not in stdout + stderr, f"TRACEBACK: {stderr[-800:]}"
    assert proc.returncode == code, f"WRONG-CODE {proc.returncode}: {stderr[-300:]}"
    assert word in stderr and "; no output was written" in stderr
    assert out.read_bytes() == out_before, "DAMAGED-FILE: output replaced by an interrupted sweep"
    no_temp_files(tmp_path)


def test_unexpected_error_is_one_line_not_a_traceback(capsys, monkeypatch):
    import tokenflow.scenarios.scenario as scen

    monkeypatch.setattr(scen, "load_scenario", lambda *a: {}["boom"])
    err = cli(["max-scale", "us5"], capsys, 70, "internal error", "KeyError", "please report")
    assert len(err.strip().splitlines()) == 1


def test_out_to_a_device_is_refused(capsys):
    import stat

    cli(["solve", "us5", "--out", "/dev/null"], capsys, 5, "not a regular file")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_out_through_a_symlink_writes_the_target(tmp_path, capsys):
    real, link = tmp_path / "real.nc", tmp_path / "link.nc"
    link.symlink_to(real)
    cli(["solve", "us5", "--out", link], capsys, 0)
    assert link.is_symlink() and tf.MarketResult.from_netcdf(real).objective > 0


@pytest.mark.parametrize("kwargs, needle", [({"n_nodes": 1}, "n_nodes"), ({"n_nodes": "5"}, "n_nodes"),
                                            ({"n_nodes": 4, "seed": -1}, "seed"),
                                            ({"n_nodes": 4, "degree": 0}, "degree")])
def test_synthetic_network_arguments(kwargs, needle):
    api_error(lambda: tf.synthetic_network(**kwargs), needle, exc=tf.ScenarioError)


def test_sweep_unknown_scenario_and_bad_frames(us5):
    import dataclasses

    api_error(lambda: tf.sweep("us7", points=[{}], n_workers=0, progress=False), "unknown scenario")
    api_error(lambda: dataclasses.replace(us5, nodes={"a": 1}), "nodes must be a pandas DataFrame",
              exc=tf.ScenarioError)


def test_from_netcdf_of_a_damaged_file(tmp_path):
    bad = write_text(tmp_path, b"CDF\x01 truncated", "r.nc")
    api_error(lambda: tf.MarketResult.from_netcdf(bad), "r.nc")


# =====================================================================================
# Issue 15 (second hostile round): the serving layer, the traces, the book and archive
# (tests/test_reproduce.py, tests/test_archive.py), scheduler addresses and output paths.
# =====================================================================================

from tokenflow.latency import market_latency as ML  # noqa: E402
from tokenflow.latency import profiles as PR  # noqa: E402
from tokenflow.latency import queueing as Q  # noqa: E402
from tokenflow.latency import simulate as SIM  # noqa: E402
from tokenflow.scenarios import traces as TR  # noqa: E402


@pytest.fixture(scope="module")
def prof(us5):
    return PR.default_profiles(us5)


@pytest.fixture(scope="module")
def path35(us5):
    return tf.solve(us5, demand_scale=35, formulation="path")


NAN, INF = float("nan"), float("inf")
RNG = np.random.default_rng(0)

# name -> (call(profiles) , words the message must hold)
SERVING_CASES = {
    "erlang_c_c_text": (lambda P: Q.erlang_c("3", 1.0), ["erlang_c", "c (servers)"]),
    "erlang_c_c_zero": (lambda P: Q.erlang_c(0, 1.0), ["c (servers)", "at least 1"]),
    "erlang_c_c_fraction": (lambda P: Q.erlang_c(2.5, 1.0), ["c (servers)", "whole"]),
    "erlang_c_load_nan": (lambda P: Q.erlang_c(3, NAN), ["offered load", "finite"]),
    "erlang_c_load_negative": (lambda P: Q.erlang_c(3, -1.0), ["offered load"]),
    "erlang_c_c_bool": (lambda P: Q.erlang_c(True, 0.5), ["c (servers)"]),
    "ggc_ca2_negative": (lambda P: Q.ggc_wait(1.0, 0.5, 2, ca2=-5), ["ggc_wait", "ca2"]),
    "ggc_cs2_nan": (lambda P: Q.ggc_wait(1.0, 0.5, 2, cs2=NAN), ["cs2"]),
    "ggc_service_zero": (lambda P: Q.ggc_wait(1.0, 0.0, 2), ["mean_service"]),
    "ggc_rate_negative": (lambda P: Q.ggc_wait(-1.0, 0.5, 2), ["lam"]),
    "ggc_servers_fraction": (lambda P: Q.ggc_wait(1.0, 0.5, 2.5), ["c (servers)"]),
    "latency_replicas_negative": (lambda P: Q.replica_latency(P["chat"], 0.5, replicas=-1), ["replicas"]),
    "latency_replicas_fraction": (lambda P: Q.replica_latency(P["chat"], 0.5, replicas=1.5), ["replicas", "whole"]),
    "latency_ca2_negative": (lambda P: Q.replica_latency(P["chat"], 0.5, ca2=-5), ["ca2"]),
    "latency_q_above_one": (lambda P: Q.replica_latency(P["chat"], 0.5, q=1.5), ["q (quantile)"]),
    "latency_q_nan": (lambda P: Q.replica_latency(P["chat"], 0.5, q=NAN), ["q (quantile)"]),
    "latency_rho_nan": (lambda P: Q.replica_latency(P["chat"], NAN), ["rho"]),
    "latency_rho_text": (lambda P: Q.replica_latency(P["chat"], "0.5"), ["rho"]),
    "latency_profile_name": (lambda P: Q.replica_latency("chat", 0.5), ["ServiceProfile"]),
    "latency_profile_no_batch": (lambda P: Q.replica_latency(__import__("dataclasses").replace(P["chat"], max_batch=0),
                                                             0.5), ["max_batch"]),
    "max_util_tol_zero": (lambda P: Q.max_utilisation(P["chat"], 500, tol=0), ["tol"]),
    "max_util_tol_nan": (lambda P: Q.max_utilisation(P["chat"], 500, tol=NAN), ["tol"]),
    "max_util_budget_nan": (lambda P: Q.max_utilisation(P["chat"], NAN), ["budget_ms"]),
    "max_util_budget_inf": (lambda P: Q.max_utilisation(P["chat"], INF), ["budget_ms"]),
    "max_util_replicas_zero": (lambda P: Q.max_utilisation(P["chat"], 500, replicas=0), ["replicas"]),
    "pool_replicas_nan": (lambda P: ML.pool_replicas(NAN, 0.5, P["chat"]), ["capacity_kw"]),
    "pool_replicas_text": (lambda P: ML.pool_replicas("x", 0.5, P["chat"]), ["capacity_kw"]),
    "pool_replicas_share": (lambda P: ML.pool_replicas(100.0, 1.5, P["chat"]), ["share"]),
    "thinned_scv_negative": (lambda P: Q.thinned_scv(-1.0, 2), ["ca2"]),
    "with_limits_nan": (lambda P: PR.with_limits(P, {"chat": NAN}), ["limits_ms", "chat"]),
    "with_limits_list": (lambda P: PR.with_limits(P, [1]), ["mapping"]),
    "default_profiles_name": (lambda P: PR.default_profiles("us5"), ["default_profiles", "load_scenario"]),
    "energy_mix_name": (lambda P: PR.energy_mix("us5"), ["energy_mix", "Scenario"]),
    "sim_replicas_negative": (lambda P: SIM.simulate_pool(P["chat"], 0.5, replicas=-1), ["replicas"]),
    "sim_replicas_huge": (lambda P: SIM.simulate_pool(P["chat"], 0.5, replicas=10**6), ["replicas", "limit"]),
    "sim_requests_huge": (lambda P: SIM.simulate_pool(P["chat"], 0.5, n_requests=10**9), ["n_requests", "limit"]),
    "sim_too_many_steps": (lambda P: SIM.simulate_pool(P["chat"], 0.1, replicas=64, n_requests=200_000),
                           ["generation steps", "limit"]),
    "sim_implied_requests_too_many": (lambda P: SIM.simulate_pool(P["chat"], 0.5, replicas=4096, n_requests=100),
                                      ["replicas", "limit"]),
    "sim_requests_fraction": (lambda P: SIM.simulate_pool(P["chat"], 0.5, n_requests=10.5), ["n_requests"]),
    "sim_rtt_negative": (lambda P: SIM.simulate_pool(P["chat"], 0.5, rtt_ms=[-100]), ["rtt_ms", ">= 0"]),
    "sim_rtt_empty": (lambda P: SIM.simulate_pool(P["chat"], 0.5, rtt_ms=[]), ["rtt_ms"]),
    "sim_weights_short": (lambda P: SIM.simulate_pool(P["chat"], 0.5, rtt_ms=[1, 2, 3], weights=[1]),
                          ["weights", "one per route"]),
    "sim_weights_zero": (lambda P: SIM.simulate_pool(P["chat"], 0.5, rtt_ms=[1, 2], weights=[0, 0]), ["weights"]),
    "sim_weights_nan": (lambda P: SIM.simulate_pool(P["chat"], 0.5, rtt_ms=[1, 2], weights=[NAN, 1]), ["weights"]),
    "sim_dispatch_typo": (lambda P: SIM.simulate_pool(P["chat"], 0.5, dispatch="rand"), ["dispatch"]),
    "sim_cv_negative": (lambda P: SIM.simulate_pool(P["chat"], 0.5, arrival_cv=-1), ["arrival_cv"]),
    "sim_rho_nan": (lambda P: SIM.simulate_pool(P["chat"], NAN), ["rho"]),
    "sim_warmup_one": (lambda P: SIM.simulate_pool(P["chat"], 0.5, warmup=1.0), ["warmup"]),
    "sample_kind_typo": (lambda P: TR.trace_stats("conv").sample(RNG, 3, "genrated"), ["what", "generated"]),
    "sample_n_negative": (lambda P: TR.trace_stats("conv").sample(RNG, -3), ["sample", "n"]),
    "sample_rng_seed": (lambda P: TR.trace_stats("conv").sample(0, 3), ["rng", "Generator"]),
    "prompt_quantile_above_one": (lambda P: TR.trace_stats("conv").prompt_quantile(2.0), ["[0, 1]"]),
    "trace_stats_list": (lambda P: TR.trace_stats(["conv"]), ["trace_stats", "name"]),
    "trace_stats_unknown": (lambda P: TR.trace_stats("chat"), ["unknown trace"]),
    "peak_to_mean_empty": (lambda P: TR.peak_to_mean(np.array([]), 1.0), ["t_s", "at least 2"]),
    "peak_to_mean_one_row": (lambda P: TR.peak_to_mean(np.array([5.0]), 1.0), ["t_s", "at least 2"]),
    "peak_to_mean_window_zero": (lambda P: TR.peak_to_mean(np.arange(100.0), 0), ["window_s"]),
    "peak_to_mean_nan_time": (lambda P: TR.peak_to_mean([0.0, NAN, 5.0], 1.0), ["t_s", "finite"]),
}


@pytest.mark.parametrize("case", list(SERVING_CASES))
def test_serving_layer_arguments(case, prof):
    call, needles = SERVING_CASES[case]
    t0 = time.perf_counter()
    msg = api_error(lambda: call(prof), *needles, exc=tf.ScenarioError if case != "trace_stats_unknown" else None)
    assert time.perf_counter() - t0 < 10, f"HANG: {msg}"


def test_serving_layer_accepts_numpy_scalars(prof):
    p = prof["chat"]
    ref = Q.replica_latency(p, 0.5, 1.0, 0.99, 2)
    got = Q.replica_latency(p, np.float32(0.5), np.float32(1.0), np.float64(0.99), np.int64(2))
    assert got["p_ms"] == pytest.approx(ref["p_ms"], rel=1e-6)
    assert Q.erlang_c(np.int32(3), np.float32(1.0)) == pytest.approx(Q.erlang_c(3, 1.0), rel=1e-6)
    assert Q.max_utilisation(p, np.float32(500.0), replicas=np.int64(2)) == Q.max_utilisation(p, 500.0, replicas=2)
    assert ML.pool_replicas(np.float32(1000.0), np.float64(0.5), p) == ML.pool_replicas(1000.0, 0.5, p)


def test_max_utilisation_tiny_tolerance_is_bounded(prof):
    t0 = time.perf_counter()
    rho = Q.max_utilisation(prof["chat"], 500.0, tol=1e-300)
    assert time.perf_counter() - t0 < 5, "HANG"
    assert Q.replica_latency(prof["chat"], rho)["p_ms"] <= 500.0
    assert abs(rho - Q.max_utilisation(prof["chat"], 500.0, tol=1e-6)) < 1e-5


def test_negative_budget_is_zero_utilisation_not_an_error(prof):
    """The round trip alone can exceed the limit (latency_clearing passes limit - RTT)."""
    assert Q.max_utilisation(prof["chat"], -5.0) == 0.0


def test_simulation_ignores_a_route_of_zero_weight(prof):
    one = SIM.simulate_pool(prof["chat"], 0.5, n_requests=300, rtt_ms=[7.0], seed=3)
    two = SIM.simulate_pool(prof["chat"], 0.5, n_requests=300, rtt_ms=[7.0, 500.0], weights=[1.0, 0.0], seed=3)
    assert two["p99_ms"] == pytest.approx(one["p99_ms"]) and two["mean_ms"] == pytest.approx(one["mean_ms"])


def test_market_latency_of_another_scenarios_result(us5, path35):
    us20 = tf.load_scenario("us20")
    api_error(lambda: ML.market_latency(path35, us20), "market_latency", "not a result of scenario",
              exc=tf.ScenarioError)
    api_error(lambda: SIM.simulate_market(path35, us20), "simulate_market", "not a result", exc=tf.ScenarioError)
    api_error(lambda: ML.route_rtts(path35, us20), "route_rtts", exc=tf.ScenarioError)


@pytest.mark.parametrize("kwargs, needle", [
    ({"q": 1.0}, "q (quantile)"), ({"peak": "yes"}, "peak"), ({"dispatch": "rr"}, "dispatch"),
    ({"capacity_kw": [1.0]}, "capacity_kw"), ({"shares": "all"}, "shares")])
def test_market_latency_arguments(us5, path35, kwargs, needle):
    api_error(lambda: ML.market_latency(path35, us5, **kwargs), needle, exc=tf.ScenarioError)


def test_market_latency_negative_or_unknown_utilisation(us5, path35):
    u = ML.pool_utilisation(path35)
    api_error(lambda: ML.market_latency(path35, us5, utilisation=-u), "utilisation", exc=tf.ScenarioError)
    api_error(lambda: ML.market_latency(path35, us5, utilisation=u.rename(index={"dallas": "dalas"})),
              "utilisation", "dalas", exc=tf.ScenarioError)
    api_error(lambda: ML.market_latency("result", us5), "market result", exc=tf.ScenarioError)


@pytest.mark.parametrize("text, needle", [
    ("", "not a readable CSV"), ("TIMESTAMP,ContextTokens,GeneratedTokens\n", "at least two"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,374,44\n", "at least two"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,374,0\n2023-11-16 18:16:46,3,4\n",
     "GeneratedTokens"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,374,4\n2023-11-16 18:15:46,3,4\n",
     "duration 0"),
    ("TIMESTAMP,Prompt\n2023-11-16 18:15:46,3\n", "missing columns")])
def test_summarize_trace_of_short_or_bad_files(tmp_path, text, needle):
    f = write_text(tmp_path, text, "trace.csv")
    api_error(lambda: TR.summarize_trace(f), needle)


def test_summarize_trace_missing_file_and_folder(tmp_path):
    api_error(lambda: TR.summarize_trace(tmp_path / "nope.csv"), "no such trace file")
    api_error(lambda: TR.summarize_trace(tmp_path), "not a regular file")  # a folder: refused before reading


# ------------------------------------------------------------------ scheduler addresses

@pytest.mark.parametrize("address, needle", [
    ("http://127.0.0.1:8787", "unsupported address scheme 'http://'"),
    ("ucx://127.0.0.1:8786", "unsupported address scheme 'ucx://'"),
    ("inproc://192.0.2.1/1/1", "unsupported address scheme 'inproc://'"),
    ("tcp://host:99999", "port"), ("tcp://:8786", "address")])
def test_cli_scheduler_scheme_is_a_clean_exit_2(address, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_text(tmp_path, "scenario: us5\ngrid: {demand_scale: [1, 2]}\n", "spec.yaml")
    cli(["sweep", "spec.yaml", "--scheduler", address], capsys, 2, "--scheduler", needle)
    assert not (tmp_path / "sweep.nc").exists()


def _listener(kind: str):
    """A local TCP server that accepts and never answers ("silent") or answers as HTTP."""
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    conns = []

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            conns.append(c)
            if kind == "http":
                try:
                    c.recv(65536)
                    c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\n\r\nbad request" * 50)
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()
    return srv, conns


@pytest.mark.parametrize("kind", ["silent", "http"])
def test_scheduler_that_is_not_dask_times_out_clearly(kind, capsys, tmp_path, monkeypatch):
    sw = importlib.import_module("tokenflow.studies.sweep_dask")  # (where CONNECT_TIMEOUT_S is read)
    monkeypatch.setattr(sw, "CONNECT_TIMEOUT_S", 2.0)
    monkeypatch.chdir(tmp_path)
    write_text(tmp_path, "scenario: us5\ngrid: {demand_scale: [1, 2]}\n", "spec.yaml")
    srv, conns = _listener(kind)
    try:
        t0 = time.perf_counter()
        err = cli(["sweep", "spec.yaml", "--scheduler", f"tcp://127.0.0.1:{srv.getsockname()[1]}"], capsys, 4,
                  "not a Dask scheduler")
        assert time.perf_counter() - t0 < 2.0 + 10, "HANG"
        assert "memory" not in err.lower()
    finally:
        srv.close()
        for c in conns:
            c.close()
    assert not (tmp_path / "sweep.nc").exists()


def test_scheduler_refused_port_is_exit_4(capsys, tmp_path, monkeypatch):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    monkeypatch.chdir(tmp_path)
    write_text(tmp_path, "scenario: us5\ngrid: {demand_scale: [1, 2]}\n", "spec.yaml")
    cli(["sweep", "spec.yaml", "--scheduler", f"tcp://127.0.0.1:{port}"], capsys, 4, "cannot connect")


def test_sweep_api_scheduler_checks(us5):
    from tokenflow.core.errors import ClusterError

    api_error(lambda: tf.sweep(us5, grid={"demand_scale": [1]}, scheduler="ucx://h:1", progress=False),
              "unsupported address scheme", exc=tf.ScenarioError)
    api_error(lambda: tf.sweep(us5, grid={"demand_scale": [1]}, scheduler=8786, progress=False),
              "scheduler", exc=tf.ScenarioError)
    api_error(lambda: tf.sweep(us5, grid={"demand_scale": [1]}, scheduler="inproc://192.0.2.9/1/1",
                               progress=False), "no Dask scheduler", exc=ClusterError)


# ------------------------------------------------------------------ output paths

def test_out_is_a_symlink_loop(tmp_path, capsys):
    (tmp_path / "a.mps").symlink_to(tmp_path / "b.mps")
    (tmp_path / "b.mps").symlink_to(tmp_path / "a.mps")
    cli(["solve", "us5", "--out", tmp_path / "a.mps"], capsys, 5, "symbolic link loop")
    cli(["export-lp", "us5", tmp_path / "b.mps"], capsys, 5, "symbolic link loop")


@pytest.mark.parametrize("target", ["/proc/tokenflow-test.nc", "/sys/tokenflow-test.nc"])
def test_out_on_a_virtual_file_system_is_not_disk_full(target, capsys):
    if not Path(target).parent.is_dir():
        pytest.skip(f"no {Path(target).parent}")
    err = cli(["solve", "us5", "--out", target], capsys, 5, target)
    assert "disk full" not in err


def test_nested_atomic_write_names_the_target(tmp_path):
    from tokenflow.core.io import atomic_write

    def inner(tmp):
        raise tf.OutputError(f"cannot write x {tmp}: permission denied")

    msg = api_error(lambda: atomic_write(tmp_path / "r.nc", inner, what="result file"), exc=tf.OutputError)
    assert str(tmp_path / "r.nc") in msg and ".tmp" not in msg


@pytest.mark.parametrize("name, needle", [("a\0b.nc", "not a valid file name"), ("x" * 5000 + ".nc", "too long")])
def test_out_name_that_cannot_be_a_file(tmp_path, name, needle):
    from tokenflow.core.io import check_output_path

    api_error(lambda: check_output_path(str(tmp_path / name), "result file"), needle, exc=tf.OutputError)


def test_market_latency_rtt_argument(us5, path35):
    api_error(lambda: ML.market_latency(path35, us5, rtt={"rtt_max_ms": 1}), "rtt", "route_rtts",
              exc=tf.ScenarioError)
    rt = ML.route_rtts(path35, us5)
    a = ML.market_latency(path35, us5, rtt=rt)
    b = ML.market_latency(path35, us5, rtt=rt.isel(origin=slice(None, None, -1)))  # labels, not order
    np.testing.assert_array_equal(a["e2e_p_ms"].values, b["e2e_p_ms"].values)


def test_sweep_client_argument(us5):
    api_error(lambda: tf.sweep(us5, grid={"demand_scale": [1]}, client="tcp://h:1", progress=False),
              "client", "distributed.Client", exc=tf.ScenarioError)


def test_scheduler_without_workers_is_a_clear_error_not_a_hang(us5, monkeypatch):
    from distributed import LocalCluster

    from tokenflow.core.errors import ClusterError

    sw = importlib.import_module("tokenflow.studies.sweep_dask")  # (where CONNECT_TIMEOUT_S is read)
    monkeypatch.setattr(sw, "CONNECT_TIMEOUT_S", 2.0)
    with LocalCluster(n_workers=0, processes=False, protocol="tcp://", dashboard_address=":0") as cluster:
        t0 = time.perf_counter()
        api_error(lambda: tf.sweep(us5, grid={"demand_scale": [1]}, scheduler=cluster.scheduler_address,
                                   progress=False), "no worker", exc=ClusterError)
        assert time.perf_counter() - t0 < 15, "HANG"


def test_route_enumeration_is_bounded(us5, path35, monkeypatch):
    from tokenflow.core import validate

    monkeypatch.setattr(validate, "MAX_ROUTE_EXPANSIONS", 3)
    api_error(lambda: ML.route_rtts(path35, us5), "route_rtts", "partial routes")


@pytest.mark.parametrize("call", [lambda P: Q.erlang_c(10**400, 1.0), lambda P: Q.ggc_wait(10**400, 1.0, 2),
                                  lambda P: SIM.simulate_pool(P["chat"], 0.5, n_requests=10**400)])
def test_integers_beyond_float_range(prof, call):
    api_error(lambda: call(prof), exc=tf.ScenarioError)


# every argument of the serving layer's public functions, one hostile value at a time: a
# TokenflowError or a result, never another exception, a RuntimeWarning or a hang
FUZZ_VALUES = [None, "x", -1, 0, 0.5, 1, 1.5, 2, -0.0, NAN, INF, -INF, True, np.float32(0.5), np.int64(3),
               [1, 2], np.array([0.5]), 10**400, 1e308, 1e-308, {"a": 1}, "generated"]
FUZZ_CALLS = {
    "erlang_c": (lambda P, r, s, *a: Q.erlang_c(*a), [3, 1.0]),
    "ggc_wait": (lambda P, r, s, *a: Q.ggc_wait(*a), [1.0, 0.5, 2, 1.0, 1.0]),
    "replica_latency": (lambda P, r, s, *a: Q.replica_latency(P["chat"], *a), [0.5, 1.0, 0.99, 1]),
    "max_utilisation": (lambda P, r, s, *a: Q.max_utilisation(P["chat"], *a), [500.0, 1.0, 0.99, 1, 1e-3]),
    "thinned_scv": (lambda P, r, s, *a: Q.thinned_scv(*a), [1.0, 2]),
    "pool_replicas": (lambda P, r, s, *a: ML.pool_replicas(*a, P["chat"]), [1000.0, 0.5]),
    "peak_to_mean": (lambda P, r, s, *a: TR.peak_to_mean(*a), [np.arange(200.0), 1.0]),
    "prompt_quantile": (lambda P, r, s, *a: TR.trace_stats("conv").prompt_quantile(*a), [0.5]),
    "trace_stats": (lambda P, r, s, *a: TR.trace_stats(*a), ["conv"]),
    "sample": (lambda P, r, s, *a: TR.trace_stats("conv").sample(np.random.default_rng(0), *a), [3, "prompt"]),
    "simulate_pool": (lambda P, r, s, *a: SIM.simulate_pool(P["chat"], a[0], replicas=a[1], n_requests=a[2],
                                                            rtt_ms=a[3], seed=a[4], warmup=a[5]),
                      [0.5, 1, 100, [1.0], 0, 0.1]),
    "market_latency": (lambda P, r, s, *a: ML.market_latency(r, s, q=a[0], peak=a[1]), [0.9, False]),
    "with_limits": (lambda P, r, s, *a: PR.with_limits(P, {"chat": a[0]}), [100.0]),
}


@pytest.mark.parametrize("name", list(FUZZ_CALLS))
def test_serving_layer_fuzz(name, prof, path35, us5):
    import warnings

    call, base = FUZZ_CALLS[name]
    for i in range(len(base)):
        for v in FUZZ_VALUES:
            args = list(base)
            args[i] = v
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)
                try:
                    call(prof, path35, us5, *args)
                except tf.TokenflowError:
                    pass
                except Exception as e:  # noqa: BLE001
                    pytest.fail(f"RAW-EXCEPTION: {name} argument {i} = {v!r:.40}: {type(e).__name__}: {e}")
            assert time.perf_counter() - t0 < 20, f"HANG: {name} argument {i} = {v!r:.40}"


@pytest.mark.parametrize("name", ["default_profiles", "energy_mix", "route_rtts_result", "route_rtts_scenario",
                                  "load_shares", "pool_utilisation", "market_latency_profiles",
                                  "market_latency_utilisation", "market_latency_capacity", "market_latency_shares",
                                  "simulate_market_utilisation", "simulate_market_result", "route_rtt_ms",
                                  "arrival_scv", "with_limits", "summarize_trace"])
def test_serving_layer_object_arguments(name, prof, path35, us5):
    """Wrong objects (None, text, a scenario for a result, another scenario's result, an arc
    result, empty frames) for the object arguments: a TokenflowError or a result."""
    import pandas as pd

    r, s = path35, us5
    calls = {
        "default_profiles": lambda a: PR.default_profiles(a), "energy_mix": lambda a: PR.energy_mix(s, a),
        "route_rtts_result": lambda a: ML.route_rtts(a, s), "route_rtts_scenario": lambda a: ML.route_rtts(r, a),
        "load_shares": lambda a: ML.load_shares(a, s), "pool_utilisation": lambda a: ML.pool_utilisation(r, a),
        "market_latency_profiles": lambda a: ML.market_latency(r, s, profiles=a),
        "market_latency_utilisation": lambda a: ML.market_latency(r, s, utilisation=a),
        "market_latency_capacity": lambda a: ML.market_latency(r, s, capacity_kw=a),
        "market_latency_shares": lambda a: ML.market_latency(r, s, shares=a),
        "simulate_market_utilisation": lambda a: SIM.simulate_market(r, s, utilisation=a, n_requests=50),
        "simulate_market_result": lambda a: SIM.simulate_market(a, s, n_requests=50),
        "route_rtt_ms": lambda a: ML.route_rtt_ms(a), "arrival_scv": lambda a: Q.arrival_scv(a),
        "with_limits": lambda a: PR.with_limits(a, {"chat": 5.0}), "summarize_trace": lambda a: TR.summarize_trace(a),
    }
    values = [None, "x", 5, s, r, prof, {"chat": 1}, pd.DataFrame(), pd.Series(dtype=float), [],
              _arc35(s), _us20()]
    for v in values:
        try:
            calls[name](v)
        except tf.TokenflowError:
            pass
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"RAW-EXCEPTION: {name}({type(v).__name__}): {type(e).__name__}: {e}")


_CACHE: dict = {}


def _arc35(s):
    if "arc" not in _CACHE:
        _CACHE["arc"] = tf.solve(s, demand_scale=35, formulation="arc")
    return _CACHE["arc"]


def _us20():
    if "us20" not in _CACHE:
        _CACHE["us20"] = tf.load_scenario("us20")
    return _CACHE["us20"]


def test_reproduce_cli_bad_roots_and_names(tmp_path, capsys):
    cli(["reproduce", "--root", tmp_path / "nope", "--no-build"], capsys, 2, "no notebooks/ folder")
    (tmp_path / "file").write_text("x")
    cli(["reproduce", "--root", tmp_path / "file", "--no-build"], capsys, 2, "no notebooks/ folder")
    (tmp_path / "notebooks").mkdir()
    cli(["reproduce", "--root", tmp_path, "--no-build", "--only", "nope"], capsys, 2, "unknown notebook")
    cli(["reproduce", "--root", tmp_path, "--no-build", "--only", "scorecard"], capsys, 2, "not found")
    assert not (tmp_path / "book").exists() and not (tmp_path / "_build").exists()
