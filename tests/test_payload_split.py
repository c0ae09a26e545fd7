"""Payload total / request / response: the four cases, in the loader and in ``replace``."""

from __future__ import annotations

import pytest

import tokenflow as tf

TOT, REQ, RESP = 100.0, 30.0, 70.0  # B/token; TOT = REQ + RESP


def _w(doc: dict, **fields: float) -> dict:
    w = doc["workloads"]["w"]
    for k in ("payload_bytes_per_token", "request_bytes_per_token", "response_bytes_per_token"):
        w.pop(k, None)
    w.update({f"{k}_bytes_per_token": v for k, v in fields.items()})
    return doc


def _split(s: tf.Scenario, w: str = "w") -> tuple[float, float, float]:
    row = s.workloads.loc[w]
    return (float(row["payload_bytes_per_token"]), float(row["request_bytes_per_token"]),
            float(row["response_bytes_per_token"]))


@pytest.mark.parametrize("fields, expected", [
    ({"payload": TOT}, (TOT, TOT, 0.0)),                          # total only: all request
    ({"request": REQ, "response": RESP}, (TOT, REQ, RESP)),       # both parts: total = sum
    ({"payload": TOT, "response": RESP}, (TOT, REQ, RESP)),       # total + response: request derived
    ({"payload": TOT, "request": REQ}, (TOT, REQ, RESP)),         # total + request: response derived
    ({"payload": TOT, "request": REQ, "response": RESP}, (TOT, REQ, RESP)),
])
def test_loader_payload_cases(tiny_doc, load_doc, fields, expected):
    assert _split(load_doc(_w(tiny_doc, **fields))) == pytest.approx(expected)


@pytest.mark.parametrize("part", ["request", "response"])
def test_loader_part_larger_than_total_names_workload_and_file(tiny_doc, load_doc, part):
    with pytest.raises(tf.ScenarioError, match=rf"scenario\.yaml: workloads\.w: .*{part}_bytes_per_token "
                                               "150, .*negative") as exc:
        load_doc(_w(tiny_doc, payload=TOT, **{part: 150.0}))
    assert len(exc.value.problems) == 1


def test_loader_three_that_do_not_add_up(tiny_doc, load_doc):
    with pytest.raises(tf.ScenarioError, match="is not request \\+ response"):
        load_doc(_w(tiny_doc, payload=TOT, request=REQ, response=RESP + 1))


def test_loader_single_part_names_the_missing_one(tiny_doc, load_doc):
    with pytest.raises(tf.ScenarioError, match="workloads.w.response_bytes_per_token: missing"):
        load_doc(_w(tiny_doc, request=REQ))


@pytest.fixture
def split(tiny_doc, load_doc) -> tf.Scenario:
    return load_doc(_w(tiny_doc, request=REQ, response=RESP))


def test_replace_total_only_scales_both_parts(split):
    assert _split(split.replace(workloads={"w": {"payload_bytes_per_token": 2 * TOT}})) == \
        pytest.approx((2 * TOT, 2 * REQ, 2 * RESP))


@pytest.mark.parametrize("cols, expected", [
    ({"request_bytes_per_token": 10.0}, (10.0 + RESP, 10.0, RESP)),
    ({"response_bytes_per_token": 10.0}, (REQ + 10.0, REQ, 10.0)),
    ({"request_bytes_per_token": 1.0, "response_bytes_per_token": 2.0}, (3.0, 1.0, 2.0)),
    ({"payload_bytes_per_token": 1000.0, "request_bytes_per_token": 10.0}, (1000.0, 10.0, 990.0)),
    ({"payload_bytes_per_token": 1000.0, "response_bytes_per_token": 10.0}, (1000.0, 990.0, 10.0)),
    ({"payload_bytes_per_token": 3.0, "request_bytes_per_token": 1.0, "response_bytes_per_token": 2.0},
     (3.0, 1.0, 2.0)),
])
def test_replace_payload_cases(split, cols, expected):
    s = split.replace(workloads={"w": cols})
    assert _split(s) == pytest.approx(expected)


@pytest.mark.parametrize("cols, needle", [
    ({"payload_bytes_per_token": 5.0, "request_bytes_per_token": 10.0}, "response_bytes_per_token would be negative"),
    ({"payload_bytes_per_token": 5.0, "response_bytes_per_token": 10.0}, "request_bytes_per_token would be negative"),
    ({"payload_bytes_per_token": 4.0, "request_bytes_per_token": 1.0, "response_bytes_per_token": 2.0},
     "is not request \\+ response"),
])
def test_replace_inconsistent_payload_is_an_error(split, cols, needle):
    with pytest.raises(tf.ScenarioError, match=rf"replace: workloads\.w.*{needle}"):
        split.replace(workloads={"w": cols})


# --------------------------------------------------------------------------- one definition (traces)

@pytest.mark.parametrize("workload, trace", [("chat", "conv"), ("code_review", "code")])
def test_text_payload_is_the_trace_summary_ratio(us5, workload, trace):
    from tokenflow.scenarios.traces import BYTES_PER_TOKEN, SSE_FRAME_BYTES, load_trace_summary
    ratio = load_trace_summary()["traces"][trace]["prompt_per_generated"]
    row = us5.workloads.loc[workload]
    assert row["request_bytes_per_token"] == pytest.approx(BYTES_PER_TOKEN * ratio, abs=5e-4)
    assert row["response_bytes_per_token"] == SSE_FRAME_BYTES


def test_trace_table_labels_plain_and_streamed_response_bytes():
    from tokenflow.scenarios.traces import SSE_FRAME_BYTES, load_trace_summary, summary_table
    tab = summary_table()
    assert not any(c == "response bytes mean" for c in tab.columns)
    for name, t in load_trace_summary()["traces"].items():
        assert tab.loc[name, "response bytes mean (streamed, SSE frames)"] == pytest.approx(
            t["generated_tokens"]["mean"] * SSE_FRAME_BYTES)
        assert tab.loc[name, "response bytes mean (plain text)"] == pytest.approx(t["response_bytes"]["mean"])


def test_payload_ranges_sit_on_the_part_they_vary(us5):
    """The robustness ranges are on the response; drawing one through replace moves the total
    and keeps the request (what the range describes)."""
    prov = us5.provenance_table().set_index("item")
    for w in us5.workload_ids:
        assert prov.loc[f"workloads.{w}.payload_bytes_per_token", "range"] == ""
    lo, hi = (float(x) for x in prov.loc["workloads.chat.response_bytes_per_token", "range"].split(" - "))
    chat = us5.workloads.loc["chat"]
    s = us5.replace(workloads={"chat": {"response_bytes_per_token": lo}})
    assert s.workloads.loc["chat", "request_bytes_per_token"] == chat["request_bytes_per_token"]
    assert s.workloads.loc["chat", "payload_bytes_per_token"] == pytest.approx(chat["request_bytes_per_token"] + lo)
    assert hi > chat["response_bytes_per_token"] > lo
