"""The WorkStudio simulator: a deterministic, seedable world behind a real DDOProtocol server.

    from ws_tracker.simulator import World, WorldConfig, SimulatorServer

    with SimulatorServer(World(WorldConfig(seed=7))) as sim:
        ...  # point the client at sim.base_url, account ASPLUNDH\\wstracker / wstracker

    plan = FaultPlan.from_specs(["http_503:view=planned_units,times=2"])
    SimulatorServer(World(), faults=plan, latency_ms=200)  # see faults.py
"""

from .faults import FaultPlan, FaultRule, FaultSpecError, parse_fault_spec
from .server import DEFAULT_ACCOUNTS, SimulatorServer, run_server
from .world import DEFAULT_CLOCK, World, WorldConfig

__all__ = [
    "DEFAULT_ACCOUNTS",
    "DEFAULT_CLOCK",
    "FaultPlan",
    "FaultRule",
    "FaultSpecError",
    "SimulatorServer",
    "World",
    "WorldConfig",
    "parse_fault_spec",
    "run_server",
]
