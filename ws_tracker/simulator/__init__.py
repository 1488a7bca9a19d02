"""The WorkStudio simulator: a deterministic, seedable world behind a real DDOProtocol server.

    from ws_tracker.simulator import World, WorldConfig, SimulatorServer

    with SimulatorServer(World(WorldConfig(seed=7))) as sim:
        ...  # point the client at sim.base_url, account ASPLUNDH\\wstracker / wstracker
"""

from .server import DEFAULT_ACCOUNTS, SimulatorServer, run_server
from .world import DEFAULT_CLOCK, World, WorldConfig

__all__ = [
    "DEFAULT_ACCOUNTS",
    "DEFAULT_CLOCK",
    "SimulatorServer",
    "World",
    "WorldConfig",
    "run_server",
]
