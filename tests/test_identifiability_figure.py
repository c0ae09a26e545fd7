"""The identifiability chapter's figure: claim outcomes per choice set, drawn readable."""

from __future__ import annotations

import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from tokenflow.core.errors import ScenarioError  # noqa: E402
from tokenflow.publish import plotting, style  # noqa: E402
from tokenflow.studies.identifiability import OUTCOMES, claim_outcomes  # noqa: E402


def _rc() -> pd.DataFrame:
    return pd.DataFrame({
        "c2_hit": [True, False, False, False], "c3_hit": [True, False, False, False],
        "c2_max": [14.5, 0.6, 0.9, np.nan], "c3_max": [149.0, 107.0, np.nan, np.nan],
        "recal_c4": [1.0, 1.0, 0.93, np.nan],
        "recal C1 ok": [True, False, False, False], "recal C2 ok": [True, False, False, False],
        "recal C3 ok": [True, False, False, False], "recal C4 ok": [True, True, False, False],
        "a": ["x", "y", "y", "x"], "b": ["p", "p", "r", "q"]})


def test_outcomes_separate_hit_missed_and_not_clearing():
    oc = claim_outcomes(_rc())
    assert list(oc.columns) == ["C1", "C2", "C3", "C4", "all four"]
    assert list(oc.iloc[0]) == ["holds"] * 5
    assert list(oc.iloc[1]) == ["fails", "fails", "fails", "holds", "fails"]
    # the 15 ms case clears nowhere: C3 cannot be judged; C1, C2 and C4 can (and fail)
    assert list(oc.iloc[2]) == ["fails", "fails", "does not clear", "fails", "fails"]
    # no recalibrated point at all (the 35x case clears at no bandwidth): no claim is counted as failing
    assert list(oc.iloc[3]) == ["does not clear"] * 4 + ["fails"]
    assert set(oc.to_numpy().ravel()) <= set(OUTCOMES)


def test_a_c4_lost_at_a_recalibrated_point_is_an_error_not_an_outcome():
    rc = _rc()
    rc.loc[2, "recal_c4"] = np.nan
    rc["recal_cases"] = ["every case clears"] * 2 + ["C4: the 20-node s* failed"] + [""]
    with pytest.raises(ScenarioError, match=r"C4 was not computed at 1 .*rows \[2\].*20-node s\* failed"):
        claim_outcomes(rc)


def test_outcomes_name_a_missing_column():
    with pytest.raises(ScenarioError, match="c3_max"):
        claim_outcomes(_rc().drop(columns="c3_max"))


def test_the_figure_is_drawn_at_the_column_width_with_readable_text():
    rc = _rc()
    fig = plotting.choice_claims(rc[["a", "b"]], claim_outcomes(rc), {"a": ("x", "y"), "b": ("p", "q", "r")})
    style.fit(fig)
    assert fig.get_size_inches()[0] == pytest.approx(style.COLUMN_WIDTH_IN)
    assert style.smallest_font(fig) >= style.MIN_FONT_PT
    assert fig.legends  # the legend is outside the axes, on the figure
    plt.close(fig)
