"""MLflow → pandas: what is read, what counts as unfinished, duplicate steps."""

import pandas as pd
import pytest

from dsrl_platform import names
from dsrl_platform.report.data import dedupe_steps, load_experiment

from report_synth import ENV_A, STEPS, SYNTH


def test_runs_and_their_identity(store):
    data = load_experiment(SYNTH, store.uri)
    assert len(data.runs) == 6 * 3 + 3 + 3  # grid + labelled variant + unfinished
    assert len(data.finished_runs()) == 21
    r = data.runs.set_index("run_name").loc["td3-ds-HalfCheetah-v4-s1"]
    assert (r.algo, r.method, r.env, r.seed, r.budget) == ("td3", "ds", ENV_A, 1, 100)
    assert r.sparsity == pytest.approx(0.5087)
    assert (r.eval_every, r.final_evals, r.params_total, r.train_flops) == (10, 3, 500.0, 4000.0)
    assert data.runs.set_index("run_name").loc["td3-ds:e200-HalfCheetah-v4-s0", "variant"] == "e200"


def test_unfinished_runs_are_listed_with_a_reason(store):
    data = load_experiment(SYNTH, store.uri)
    u = data.unfinished_runs().set_index("run_name")
    assert set(u.index) == {"crashed", "still-running", "failed-after-summary"}
    assert u.loc["crashed", "reason"] == f"MLflow status FAILED; no {names.TAG_STATUS}=finished tag"
    assert u.loc["still-running", "reason"] == f"MLflow status RUNNING; no {names.TAG_STATUS}=finished tag"
    assert u.loc["failed-after-summary", "reason"] == "MLflow status FAILED"
    assert (u.loc["crashed", "last_step"], u.loc["still-running", "last_step"]) == (40, 60)


def test_resumed_trial_keeps_the_last_value_per_step(store):
    data = load_experiment(SYNTH, store.uri)
    rid = data.runs.set_index("run_name").loc["td3-ds-HalfCheetah-v4-s0", "run_id"]
    ev = data.evals[data.evals["run_id"] == rid]
    assert list(ev["step"]) == STEPS  # 11 points, not 13
    assert list(ev["return"]) == [2.0 * t for t in STEPS]  # 99999 at steps 50 and 100 replaced
    fl = data.flops[data.flops["run_id"] == rid]
    assert list(fl["flops"]) == [40.0 * t for t in STEPS]


def test_dedupe_steps_prefers_latest_timestamp_then_logging_order():
    h = pd.DataFrame({"step": [10, 0, 10, 20, 20], "timestamp": [5, 1, 3, 7, 7],
                      "value": [1.0, 0.0, 9.0, 2.0, 3.0]})
    out = dedupe_steps(h)
    assert list(out["step"]) == [0, 10, 20]
    assert list(out["value"]) == [0.0, 1.0, 3.0]  # step 10: ts 5 beats ts 3; step 20: tie, last


def test_unknown_experiment_names_it(store):
    with pytest.raises(ValueError, match="experiment 'nope': not found .*known: .*synth"):
        load_experiment("nope", store.uri)


def test_missing_sqlite_store_is_not_created(tmp_path):
    db = tmp_path / "absent.db"
    with pytest.raises(ValueError, match="no such file"):
        load_experiment(SYNTH, f"sqlite:///{db}")
    assert not db.exists()
