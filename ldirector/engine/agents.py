"""Load agents (``agentport``): a second, separate check per real that reads the real's own view
of its load, in the style of HAProxy's ``agent-check``.

An agent never moves a real's health: what it says becomes a weight (``75%``; ``drain`` is 0%)
or a hold the kernel sees like an operator's (``down``/``maint``: left out, as ``disable``
does). An agent that cannot be reached says nothing, and what it said last stands.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from types import MappingProxyType

from checks.types import AgentSpec, Result, Target, Transport
from ldirector.config.model import Real, Virtual
from ldirector.core.desired import HoldMap, RealKey
from ldirector.core.plan import Job

#: The hold an agent's ``down``/``maint`` puts on its real (``ldirector.core.holds``' word).
AGENT_OUT = "disabled"


def agent_jobs(reals: Mapping[RealKey, tuple[Virtual, Real]]) -> dict[Job, tuple[RealKey, ...]]:
    """One agent job per real of a virtual with ``agentport``, and its readers."""
    readers: defaultdict[Job, list[RealKey]] = defaultdict(list)
    for key, (virtual, real) in reals.items():
        if virtual.agentport is None:
            continue
        target = Target(address=real.address, port=virtual.agentport, transport=Transport.TCP)
        job = Job(
            target=target,
            spec=AgentSpec(),
            timeout=virtual.agenttimeout,
            interval=virtual.agentinterval,
            label="agent",
        )
        readers[job].append(key)
    return {job: tuple(keys) for job, keys in readers.items()}


def answered(result: Result) -> bool:
    """Whether the agent itself spoke: a passing result, or a failed one carrying its word."""
    return result.ok or result.weight is not None


class Agents:
    """What each real's agent last said: the holds it asked for."""

    def __init__(self) -> None:
        self.jobs: dict[Job, tuple[RealKey, ...]] = {}
        self.out: dict[RealKey, str] = {}

    def install(self, reals: Mapping[RealKey, tuple[Virtual, Real]]) -> None:
        """The agent jobs of a config; holds of reals no longer watched by an agent go."""
        self.jobs = agent_jobs(reals)
        watched = {key for keys in self.jobs.values() for key in keys}
        self.out = {key: hold for key, hold in self.out.items() if key in watched}

    def record(self, key: RealKey, result: Result) -> bool:
        """Apply one agent result; True when the real's hold changed."""
        if not answered(result):
            return False
        before = self.out.get(key)
        if result.ok:
            self.out.pop(key, None)
        else:
            self.out[key] = AGENT_OUT
        return before != self.out.get(key)

    def holds(self, operator: HoldMap) -> HoldMap:
        """The operator's holds, and the agents' under them (an operator's word wins)."""
        if not self.out:
            return operator
        return MappingProxyType({**self.out, **operator})
