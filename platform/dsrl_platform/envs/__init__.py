"""Environments: ids checked before anything runs, made with their family's wrappers.

Families: gymnasium's own (classic control, MuJoCo, Box2D), MinAtar (the `minatar` package) and
Atari (`ale-py`, with the usual DQN preprocessing: envs/atari.py). `make_env` is the one place
that knows them; agents see only `Spaces`.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib
import tempfile
import warnings

import gymnasium as gym

from dsrl_platform.agents.protocol import Spaces
from dsrl_platform.envs.episode import EpisodeReplay

__all__ = ["EpisodeReplay", "check_env_id", "env_family_kind", "env_spaces", "make_env"]

ATARI_ENTRY = "ale_py.env:AtariEnv"
MINATAR_ENTRY = "minatar.gym:BaseEnv"
# Optional families: registered with gymnasium on first use (their import costs time).
_OPTIONAL = {"MinAtar/": ("minatar.gym", "pip install minatar"), "ALE/": ("ale_py", "pip install ale-py")}


def _register_optional(env_id: str) -> str | None:
    """Register the optional family `env_id` belongs to; the install hint if it is missing."""
    for prefix, (module, install) in _OPTIONAL.items():
        if env_id.startswith(prefix) or (prefix == "ALE/" and "NoFrameskip" in env_id):
            try:
                mod = importlib.import_module(module)
            except ImportError:
                return install
            if module == "minatar.gym":
                if not any(k.startswith("MinAtar/") for k in gym.envs.registry):
                    mod.register_envs()
            else:
                mod.ALEInterface.setLoggerMode(mod.LoggerMode.Error)  # no banner on stdout
                gym.register_envs(mod)
    return None


def _entry(spec: gym.envs.registration.EnvSpec) -> str:
    entry = spec.entry_point
    return entry if isinstance(entry, str) else f"{entry.__module__}:{entry.__name__}"


def check_env_id(env_id: str, field_name: str | None = "env") -> None:
    """An id gymnasium knows and can run here (cheap: no simulator started); ValueError naming
    the field. MuJoCo -v2/-v3 are registered but need the dead mujoco-py; Box2D, MinAtar and
    Atari need their optional packages."""
    prefix = f"{field_name}: " if field_name else ""
    missing = None if env_id in gym.envs.registry else _register_optional(env_id)
    spec = gym.envs.registry.get(env_id)
    if spec is None:
        if missing:
            raise ValueError(f"{prefix}{env_id} needs an optional package ({missing})")
        close = difflib.get_close_matches(env_id, list(gym.envs.registry), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(f"{prefix}unknown environment {env_id!r}{hint}")
    entry = _entry(spec)
    if "mujoco_py" in entry:
        raise ValueError(f"{prefix}{env_id} needs mujoco-py, which gymnasium {gym.__version__} cannot run; "
                         f"use {spec.name}-v4 (the papers' v3 dynamics, same learning curves) or {spec.name}-v5")
    try:  # imports the env's module: a missing simulator (Box2D, …) shows here, not in a worker
        gym.envs.registration.load_env_creator(entry)
    except (ImportError, gym.error.DependencyNotInstalled) as err:
        raise ValueError(f"{prefix}{env_id} cannot be made here: {' '.join(str(err).split())}") from None


def env_family_kind(env_id: str) -> str:
    """'atari', 'minatar' or 'gym' (vectors: classic control, MuJoCo, Box2D)."""
    check_env_id(env_id)
    entry = _entry(gym.envs.registry[env_id])
    return "atari" if entry == ATARI_ENTRY else "minatar" if entry == MINATAR_ENTRY else "gym"


_mujoco_messages: list[str] = []


def _quiet_mujoco() -> None:
    """MuJoCo prints its warnings (HalfCheetah's deprecated settotalmass, …) and appends them to
    MUJOCO_LOG.TXT in the working directory; keep them in memory instead."""
    try:
        import mujoco
    except ImportError:
        return
    mujoco.set_mju_user_warning(_mujoco_messages.append)


def make_env(env_id: str) -> gym.Env:
    kind = env_family_kind(env_id)
    _quiet_mujoco()
    with warnings.catch_warnings():  # -v4 is chosen on purpose: it has v3's learning curves
        warnings.filterwarnings("ignore", message=".*is out of date.*")
        if kind == "atari":
            from dsrl_platform.envs.atari import make_atari

            return make_atari(env_id)
        env = gym.make(env_id)
    if kind == "minatar":
        from dsrl_platform.envs.atari import channels_first

        env = channels_first(env)
    return env


def reseeds_each_episode(env_id: str) -> bool:
    """Envs whose randomness lives outside gymnasium's np_random (ALE's sticky actions, MinAtar's
    RandomState): each episode is reset with a seed of its own, so a checkpoint can replay it."""
    return env_family_kind(env_id) != "gym"


@functools.cache
def env_spaces(env_id: str) -> Spaces:
    """The observation and action spaces of a freshly made env (in a scratch directory, so that
    validating leaves no file behind)."""
    with tempfile.TemporaryDirectory() as scratch, contextlib.chdir(scratch):
        env = make_env(env_id)
        try:
            return Spaces.of(env)
        finally:
            env.close()
