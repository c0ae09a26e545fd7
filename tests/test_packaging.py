"""Packaging metadata agree: environment.yml vs pyproject.toml dependencies (conda is not
available here, so the comparison is by name), version everywhere, CITATION.cff vs .zenodo.json."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import yaml

import tokenflow

ROOT = Path(__file__).resolve().parents[1]
NOT_PACKAGES = {"python", "pip"}


def _name(spec: str) -> str:
    """Normalised distribution name of a requirement (PEP 503)."""
    name = re.split(r"[\s<>=!~;\[]", spec.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def pyproject_deps() -> set[str]:
    proj = pyproject()["project"]
    deps = {_name(d) for d in proj["dependencies"]}
    for reqs in proj.get("optional-dependencies", {}).values():
        deps |= {_name(r) for r in reqs if not _name(r).startswith("tokenflow")}
    return deps


def environment_deps() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = set()
    for d in env["dependencies"]:
        if isinstance(d, dict):
            deps |= {_name(p) for p in d.get("pip", []) if not p.startswith("-")}
        else:
            deps.add(_name(d))
    return deps - NOT_PACKAGES


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    py, env = pyproject_deps(), environment_deps()
    assert py - env == set(), f"in pyproject.toml but not environment.yml: {sorted(py - env)}"
    assert env - py == set(), f"in environment.yml but not pyproject.toml: {sorted(env - py)}"


def test_environment_pins_match_pyproject_lower_bounds():
    """Where both files state a minimum version, it is the same one."""
    def bounds(specs):
        return {_name(s): m.group(1) for s in specs if (m := re.search(r">=\s*([\w.]+)", s))}

    proj = pyproject()["project"]
    py = bounds(proj["dependencies"] + [r for v in proj["optional-dependencies"].values() for r in v])
    env_specs = []
    for d in yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]:
        env_specs += d.get("pip", []) if isinstance(d, dict) else [d]
    env = bounds(env_specs)
    differ = {k: (py[k], env[k]) for k in py.keys() & env.keys() if py[k] != env[k]}
    assert not differ, f"minimum versions differ (pyproject, environment): {differ}"


def test_one_version_everywhere():
    v = pyproject()["project"]["version"]
    assert tokenflow.__version__ == v
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert str(cff["version"]) == v
    assert json.loads((ROOT / ".zenodo.json").read_text())["version"] == v
    assert f"version = {{{v}}}" in (ROOT / "book" / "cite.md").read_text()
    assert f"## [{v}]" in (ROOT / "CHANGELOG.md").read_text()


def test_zenodo_metadata_consistent_with_citation_cff():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    zen = json.loads((ROOT / ".zenodo.json").read_text())
    assert zen["title"] == cff["title"]
    assert zen["license"] == cff["license"]
    assert sorted(zen["keywords"]) == sorted(cff["keywords"])
    assert [c["name"] for c in zen["creators"]] == [
        a.get("name") or f"{a['family-names']}, {a['given-names']}" for a in cff["authors"]]
    assert zen["upload_type"] == "software" and cff["type"] == "software"
    # the original paper and every DOI that CITATION.cff references are related identifiers
    related = {r["identifier"] for r in zen["related_identifiers"]}
    for ref in cff["references"]:
        ids = [ref["doi"]] if "doi" in ref else [i["value"] for i in ref.get("identifiers", [])]
        assert set(ids) & related, f"{ref['title']} missing from .zenodo.json related_identifiers"
    assert str(cff["date-released"]) == zen["publication_date"]


def test_map_data_ships_with_the_package():
    data = pyproject()["tool"]["setuptools"]["package-data"]["tokenflow"]
    assert any(p.startswith("data/**") for p in data)
    assert (ROOT / "tokenflow" / "data" / "naturalearth" / "shapefiles" / "natural_earth").is_dir()
