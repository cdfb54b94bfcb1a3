"""Run options: shared and per-algorithm models, the papers' defaults, resolution.

    from dsrl_platform import config
    cfg = config.build(algo="sac", method="ds", env="Hopper-v4")   # SACConfig, None = default
    run = cfg.resolve()                                             # Resolved: what a run uses
"""

from dsrl_platform.config.base import SPARSE_ONLY, Resolved, RunConfig, resolved_type
from dsrl_platform.config.build import (DEFAULT_ALGO, build, check_names, config_class, config_classes,
                                        first_error, option_owners, parse_assignments, resolved)
from dsrl_platform.config.papers import env_family

__all__ = ["SPARSE_ONLY", "Resolved", "RunConfig", "resolved_type", "DEFAULT_ALGO", "build", "check_names",
           "config_class", "config_classes", "first_error", "option_owners", "parse_assignments", "resolved",
           "env_family"]
