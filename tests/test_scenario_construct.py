"""The constructor never leaves a half-resolved Scenario; choice problems name the file."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

import tokenflow as tf
from tokenflow.scenarios.scenario import CHOICES, PROVENANCE_COLUMNS


def test_empty_provenance_frame_still_resolves(us5):
    s = dataclasses.replace(us5, provenance=pd.DataFrame(), modelling_choices={})
    assert s.choices == {k: v[0] for k, v in CHOICES.items()}
    assert list(s.provenance.columns) == PROVENANCE_COLUMNS
    assert set(s.provenance.loc[s.provenance["kind"] == "choice", "item"]) == {f"choices.{k}" for k in CHOICES}


def test_structural_problem_raises_instead_of_half_built(us5):
    wl = us5.workloads.drop(columns=["payload_bytes_per_token", "request_bytes_per_token",
                                     "response_bytes_per_token"])
    with pytest.raises(tf.ScenarioError, match="workloads.chat.payload_bytes_per_token: missing"):
        dataclasses.replace(us5, workloads=wl, provenance=pd.DataFrame(), modelling_choices={})


def test_provenance_must_be_a_frame(us5):
    with pytest.raises(tf.ScenarioError, match="provenance must be a pandas DataFrame"):
        dataclasses.replace(us5, provenance=None)


def test_constructor_completes_a_partial_split(us5):
    wl = us5.workloads.drop(columns=["request_bytes_per_token"])
    s = dataclasses.replace(us5, workloads=wl)
    pd.testing.assert_series_equal(s.workloads["request_bytes_per_token"], us5.workloads["request_bytes_per_token"],
                                   check_exact=False)


def test_missing_choice_alternative_names_the_file(tiny_doc, load_doc):
    tiny_doc["choices"] = {"electricity_sector": "industrial"}
    with pytest.raises(tf.ScenarioError, match=r"scenario\.yaml: choice electricity_sector='industrial' "
                                               r"needs nodes\.<id>\.electricity_usd_per_kwh_industrial") as exc:
        load_doc(tiny_doc)
    assert all("scenario.yaml" in p for p in exc.value.problems)


def test_constructor_split_from_numpy_integers(us5):
    wl = us5.workloads.drop(columns=["payload_bytes_per_token"]).astype(
        {"request_bytes_per_token": "int64", "response_bytes_per_token": "int64"})
    s = dataclasses.replace(us5, workloads=wl)
    assert (s.workloads["payload_bytes_per_token"]
            == wl["request_bytes_per_token"] + wl["response_bytes_per_token"]).all()
