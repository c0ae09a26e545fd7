"""tools/glue_values.py: the glued values of executed notebooks, for a before/after comparison."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

import glue_values as gv  # noqa: E402

PREFIX = "application/papermill.record/"


def _nb(value: str, png: str = "iVBOR") -> dict:
    glued = {"output_type": "display_data", "metadata": {"scrapbook": {"name": "x", "mime_prefix": PREFIX}},
             "data": {PREFIX + "text/plain": [value[:2], value[2:]], PREFIX + "image/png": png}}
    plain = {"output_type": "stream", "name": "stdout", "text": "not glued"}
    return {"cells": [{"cell_type": "markdown", "source": "# t"},
                      {"cell_type": "code", "source": "", "outputs": [plain, glued, glued]}]}


def test_glue_values_reads_every_glued_output(tmp_path, capsys):
    (tmp_path / "a.ipynb").write_text(json.dumps(_nb("'0.123'")))
    assert gv.main([str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    [v1, v2] = out["a.ipynb"]["x"]
    assert v1 == v2 and v1["text/plain"] == "'0.123'" and v1["image/png"].startswith("sha256:")


def test_glue_values_differ_when_one_value_differs(tmp_path, capsys):
    dumps = []
    for value in ("'0.123'", "'0.124'", "'0.123'"):
        (tmp_path / "a.ipynb").write_text(json.dumps(_nb(value)))
        gv.main([str(tmp_path)])
        dumps.append(capsys.readouterr().out)
    assert dumps[0] != dumps[1] and dumps[0] == dumps[2]


def test_glue_values_refuses_an_empty_build(tmp_path, capsys):
    assert gv.main([str(tmp_path / "missing")]) == 2
    (tmp_path / "a.ipynb").write_text(json.dumps({"cells": []}))
    assert gv.main([str(tmp_path)]) == 2
    assert "no glued value" in capsys.readouterr().err
