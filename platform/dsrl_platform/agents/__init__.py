"""RL agents on the sparse library: the protocol the runner uses, and one module per algorithm.

The registry (agents/registry.py) maps names to algorithms; import it from there
(`from dsrl_platform.agents.registry import ALGORITHMS`) so that `import dsrl_platform.agents`
stays cheap.
"""
