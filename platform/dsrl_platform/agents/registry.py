"""Algorithms by name: one entry each, with the traits the runner, specs and checks ask about.

A new algorithm is one module (its config class with the paper's defaults, and its agent
implementing agents/protocol.py) plus one entry here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from dsrl_platform.agents.dqn import DQN, DQNConfig
from dsrl_platform.agents.ppo import PPO, PPOConfig
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

    def check_shapes(self, cfg: Resolved, spaces: Spaces, memory_bytes: int | None = None) -> None:
        """Build the networks on the meta device (no memory) and check their layer densities,
        and that their training state fits in `memory_bytes`."""
        with torch.device("meta"):
            modules = self.agent.build_modules(cfg, spaces, None)
        check_densities(cfg, modules)
        params = sum(p.numel() for m in modules.values() for p in m.parameters())
        # weights, target, gradient, Adam's two moments and a mask: six float32 copies
        need = params * 4 * 6
        if memory_bytes is not None and need > memory_bytes:
            raise ValueError(f"hidden_sizes: {params:,} parameters need about {need / 2**30:.0f} GiB to train, "
                             f"this machine has {memory_bytes / 2**30:.0f} GiB")


ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in (
    Algorithm("td3", "TD3, Sokar et al.'s settings (continuous control)", TD3Config, TD3, "continuous"),
    Algorithm("sac", "SAC with a fixed temperature, Sokar et al.'s appendix (continuous control)",
              SACConfig, SAC, "continuous"),
    Algorithm("dqn", "DQN, Graesser et al.'s settings (classic control, MinAtar, Atari)", DQNConfig, DQN, "discrete"),
    Algorithm("ppo", "PPO (clipped), Graesser et al.'s TF-Agents settings (continuous control)", PPOConfig, PPO,
              "continuous"),
)}


def check_run(cfg: Resolved, *, local_device: bool = True) -> list[str]:
    """Everything a run would refuse, checked before anything starts (ValueError naming the
    option): the environment exists here and suits the algorithm, the networks' layer densities
    are possible, the device exists (`local_device`: on this machine). Returns warnings."""
    from dsrl_platform.agents.base import pick_device, threads_warning
    from dsrl_platform.envs import env_spaces

    algorithm = ALGORITHMS[cfg.algo]
    spaces = env_spaces(cfg.env)
    algorithm.check_spaces(spaces, cfg.env)
    algorithm.check_shapes(cfg, spaces, _physical_memory() if local_device else None)
    if local_device:
        pick_device(cfg.device)
    return [w for w in (threads_warning(cfg),) if w]


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
