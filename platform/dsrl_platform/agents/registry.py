"""Algorithms by name: one entry each, with the traits the runner, specs and checks ask about.

A new algorithm is one module (its config class with the paper's defaults, and its agent
implementing agents/protocol.py) plus one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dsrl_platform.agents.protocol import Spaces
from dsrl_platform.agents.sac import SAC, SACConfig
from dsrl_platform.agents.sparsity import check_densities
from dsrl_platform.agents.td3 import TD3, TD3Config
from dsrl_platform.config.base import Resolved, RunConfig


@dataclass(frozen=True)
class Algorithm:
    name: str
    description: str
    config: type[RunConfig]  # its options and the papers' defaults
    agent: type  # implements agents.protocol.Agent; `build_modules` gives its online networks
    action_space: str  # "continuous" or "discrete"

    def check_spaces(self, spaces: Spaces, env: str) -> None:
        if spaces.discrete != (self.action_space == "discrete"):
            kind = "discrete" if spaces.discrete else "continuous"
            raise ValueError(f"env: {env} has a {kind} action space; {self.name} needs {self.action_space} actions")

    def check_shapes(self, cfg: Resolved, spaces: Spaces) -> None:
        """Build the networks on the meta device (no memory) and check their layer densities."""
        with torch.device("meta"):
            modules = self.agent.build_modules(cfg, spaces, None)
        check_densities(cfg, modules)


ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in (
    Algorithm("td3", "TD3, Sokar et al.'s settings (continuous control)", TD3Config, TD3, "continuous"),
    Algorithm("sac", "SAC with a fixed temperature, Sokar et al.'s appendix (continuous control)",
              SACConfig, SAC, "continuous"),
)}
