"""Algorithms by name."""

from dsrl_platform.agents.base import OffPolicyAgent
from dsrl_platform.agents.sac import SAC
from dsrl_platform.agents.td3 import TD3

ALGORITHMS: dict[str, type[OffPolicyAgent]] = {"td3": TD3, "sac": SAC}
