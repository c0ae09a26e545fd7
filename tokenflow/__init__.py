"""tokenflow: locational prices for generative-AI workloads from a token-flow market LP.

Reproduces and extends Liu, *Locational Pricing for Generative-AI Services via
Token-Flow Market Clearing* (arXiv 2605.09047).
"""

from ._version import __version__
from .clearing.engine import Market
from .clearing.market import demand_scale_limit, export_lp, max_demand_scale, solve
from .clearing.results import MarketResult
from .core.errors import InfeasibleMarketError, OutputError, ScenarioError, SolverError, TokenflowError
from .planning.bids import BidResult, clear_bids
from .planning.plan import PlanResult, plan
from .scenarios.choices import CHOICES
from .scenarios.scenario import available_scenarios, load_scenario
from .scenarios.scenario_class import Scenario
from .scenarios.synthetic import synthetic_network
from .studies.sweep import sweep

__all__ = [
    "BidResult", "CHOICES", "InfeasibleMarketError", "Market", "MarketResult", "OutputError", "Scenario",
    "ScenarioError", "SolverError",
    "TokenflowError", "available_scenarios", "clear_bids", "demand_scale_limit", "export_lp", "load_scenario",
    "max_demand_scale", "plan", "PlanResult", "solve", "sweep", "synthetic_network", "__version__",
]
