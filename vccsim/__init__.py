"""vccsim: a stand-in for Vonage Contact Center's servers, in-process or over HTTP. See README.md."""

from __future__ import annotations

from vccsim.clock import Clock
from vccsim.server import RunningServer, start_server
from vccsim.simulator import Simulator
from vccsim.state import Account, load_account
from vccsim.wire import SimResponse

__all__ = ["Account", "Clock", "RunningServer", "SimResponse", "Simulator", "load_account", "start_server"]
