"""MLflow tracking: the only package that imports MLflow (lazily: `validate` never pays for it).

Layout of a store (names in `dsrl_platform.names`; launch, status and report all read it so):
- one MLflow experiment per spec (its `name`);
- one parent run per launch, tagged `dsrl.role=launch` and found again by its launch key (the
  hash of the experiment name and its run keys), so relaunching the same grid reuses it; the
  spec file and the expanded grid (with each trial's name) are its artifacts; while the launch
  runs, its driver beats a heartbeat on it (`liveness`);
- one child run per trial, named like the trial, tagged `dsrl.role=trial`, algo, method, env,
  seed, steps (budget), sparsity (the agent's initial overall sparsity) and `run_key` (the hash
  of the resolved config). A trial's run is found again by its run key: retries and relaunches
  continue it. The resolved config is logged as params. A trial is finished when its run is
  tagged `dsrl.status=finished` and ended FINISHED (`is_finished`).

Modules: `uri` (accepted store URIs), `client` (connecting, timeouts, retries, runs), `sink`
(metrics of a running trial), `liveness` (the launch heartbeat), `status`, `ui`.
"""

from dsrl_platform.tracking.client import (
    FAILED,
    FINISHED,
    KILLED,
    RUNNING,
    Tracker,
    TrackingUnavailable,
    check_store,
    is_finished,
    is_transient,
    unfinished_reason,
    with_retries,
)
from dsrl_platform.tracking.sink import MlflowSink

__all__ = ["FAILED", "FINISHED", "KILLED", "RUNNING", "MlflowSink", "Tracker", "TrackingUnavailable",
           "check_store", "is_finished", "is_transient", "unfinished_reason", "with_retries"]
