"""The paper's case definitions: the inputs of its experiments (not results), shared by the
claims (:mod:`tokenflow.studies.claims`), the sweeps (:mod:`tokenflow.sweep`) and the studies built on
them.  Kept below both so that neither imports the other for a constant (no import circle; see
ARCHITECTURE.md); :mod:`tokenflow.studies.claims` re-exports them."""

from __future__ import annotations

CASE_SCALE = 35.0  # paper: "demand scale 35x" for the 5- and 20-node cases
CHAT_LIMITS_MS = (100.0, 15.0)  # paper: chatbot latency limit tightened from 100 ms to 15 ms
SATURATION = 0.999  # C1: a link counts as saturated at >= 99.9 % utilisation
#: decimals of the percentages C2 and C3 where many of them are compared or counted (the sweep's
#: claims evaluator, the identifiability study): 1e-6 percentage points.  Below that, the
#: solver's rounding decides, not the market: a zero rise comes out as +-1e-13 depending on the
#: basis a warm start came from, which would flip its sign and the node of the largest of
#: several equal rises.
CLAIM_DECIMALS = 6
