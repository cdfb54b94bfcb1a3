"""Names that leave the process: MLflow metrics, tags and summary keys.

Reports, dashboards and users depend on these strings; they are defined here once and
imported everywhere else. Metric steps are always environment steps.
"""

# --- metrics (MLflow metric keys; step = environment steps) ---------------------------
EVAL_RETURN = "eval/return_mean"  # mean return of the deterministic policy
EVAL_RETURN_STD = "eval/return_std"
TRAIN_EPISODE_RETURN = "train/episode_return"
TRAIN_FLOPS = "cost/train_flops"  # cumulative training FLOPs, topology updates included
TRAIN_FLOPS_DENSE = "cost/train_flops_dense"  # cumulative FLOPs the dense agent would spend
FLOPS_PER_STEP = "cost/flops_per_step"  # training FLOPs of one environment step, now
PARAMS_PREFIX = "params/"  # + network: nonzero weights (papers' convention: no biases, no targets)
PARAMS_ACTOR = "params/actor"
PARAMS_CRITIC = "params/critic"  # both critics
PARAMS_TOTAL = "params/total"  # every trained network
PARAMS_TOTAL_WITH_BIASES = "params/total_with_biases"
SPARSITY_PREFIX = "sparsity/"  # + network
SPARSITY_ACTOR = "sparsity/actor"
SPARSITY_CRITIC = "sparsity/critic"
SPARSITY_TOTAL = "sparsity/total"
TRAIN_FLOPS_PREFIX = "cost/train_flops/"  # + network: its cumulative training FLOPs
LAYER_SPARSITY_PREFIX = "layer_sparsity/"  # + layer name, e.g. layer_sparsity/actor.0
TOPOLOGY_CHURN = "topology/churn"  # connections regrown at the latest topology update
STEPS_PER_S = "perf/steps_per_s"
# Dormant neurons (Sokar et al. 2023), on a batch the agent trained on, at every evaluation:
DORMANT_PREFIX = "dormant/"  # + network: fraction of its hidden units that are τ-dormant; + layer: per layer
FEATURE_RANK_PREFIX = "feature_rank/"  # + network: srank of its penultimate features (Kumar et al. 2021)
REDO_RECYCLED = "redo/recycled"  # neurons recycled by ReDo so far (cumulative)
REPLAY_SIZE = "replay/size"  # transitions in the replay buffer (RLx2's dynamic capacity shrinks it)
REPLAY_POLICY_DISTANCE = "replay/policy_distance"  # RLx2: distance of the policy to the oldest data, last check
UPDATE_MS = "perf/update_ms"  # measured wall-clock ms of one agent update (all its gradient steps), since the last evaluation
SPARSE_KERNEL_LAYERS = "kernels/sparse_layers"  # weight layers running on a sparse kernel now (sparse_kernels auto/sparse)
KERNEL_SPARSE_PREFIX = "kernel_sparse/"  # + masked weight, e.g. kernel_sparse/critic.ws.0: 1 on a sparse kernel, 0 dense


def layer_sparsity_metric(layer: str) -> str:
    return LAYER_SPARSITY_PREFIX + layer


def dormant_metric(network_or_layer: str) -> str:
    return DORMANT_PREFIX + network_or_layer


def feature_rank_metric(network: str) -> str:
    return FEATURE_RANK_PREFIX + network


def kernel_sparse_metric(weight: str) -> str:
    return KERNEL_SPARSE_PREFIX + weight


def params_metric(network: str) -> str:
    return PARAMS_PREFIX + network


def sparsity_metric(network: str) -> str:
    return SPARSITY_PREFIX + network


def train_flops_metric(network: str) -> str:
    return TRAIN_FLOPS_PREFIX + network


# --- tags on every trial run ----------------------------------------------------------
TAG_ALGO = "algo"
TAG_METHOD = "method"
TAG_ENV = "env"
TAG_SEED = "seed"
TAG_SPARSITY = "sparsity"  # resolved overall sparsity of the agent at initialisation
TAG_RUN_KEY = "run_key"  # stable hash of the trial's resolved config
TAG_PARENT = "mlflow.parentRunId"
TAG_ROLE = "dsrl.role"  # "launch" (parent) or "trial" (child)
TAG_STATUS = "dsrl.status"  # "finished" once a trial wrote its summary
TAG_BUDGET = "steps"

# --- summary (results/summary.json, and MLflow metrics with the summary/ prefix) -------
SUMMARY_FINAL_RETURN = "final_return"  # mean of the last `final_evals` evaluations
SUMMARY_LCA = "lca"  # learning-curve area: sum of evaluation returns / steps
# measured, not reproducible (Runner.measured): wall-clock of the updates, and the kernels chosen
SUMMARY_UPDATE_MS = "update_ms"  # mean wall-clock ms per agent update over the run
SUMMARY_UPDATE_WALL_S = "update_wall_s"  # total wall-clock seconds the run spent in updates
SUMMARY_KERNEL_PATHS = "kernel_paths"  # "layer=path,…" of every masked weight (dense, native, torch)
SUMMARY_SPARSE_KERNEL_LAYERS = "sparse_kernel_layers"  # how many of them run sparse at the end
SUMMARY_KERNEL_REBUILD_S = "kernel_rebuild_s"  # seconds spent building sparse structures (start, topology changes)
SUMMARY_KERNEL_CALIBRATION_S = "kernel_calibration_s"  # seconds spent measuring dense vs sparse per layer (auto)
SUMMARY_PREFIX = "summary/"

# --- launcher layout (experiment launcher, spec/orchestrate/tracking) -------------------
TAG_VARIANT = "dsrl.variant"  # method variant label from the spec, when it names one
TAG_LAUNCH_KEY = "dsrl.launch_key"  # parent run: hash of the experiment name and its run keys
TAG_TRIALS = "dsrl.trials"  # parent run: number of trials in the grid
TAG_ATTEMPTS = "dsrl.attempts"  # trial run: how many times a worker started it (retries, relaunches)
TAG_RESUMED_FROM = "dsrl.resumed_from_step"  # trial run: step of the checkpoint last resumed from
TAG_FAILURE = "dsrl.failure"  # trial run: why it stopped while its group trained on (e.g. diverged)
TAG_GROUP = "dsrl.group"  # trial run: the group (Tune trial) that trained it
ARTIFACT_SPEC_DIR = "spec"  # parent run: the spec file as launched
ARTIFACT_GRID = "grid.json"  # parent run: the expanded trials (one object per trial)
ROLE_LAUNCH, ROLE_TRIAL = "launch", "trial"  # values of TAG_ROLE
STATUS_FINISHED = "finished"  # value of TAG_STATUS
