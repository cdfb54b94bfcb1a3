"""Fixtures: the synthetic store (report_synth.py says what is in it) and its analysis."""

import pytest
from report_synth import SYNTH, write_store


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    return write_store(tmp_path_factory.mktemp("mlflow"))


@pytest.fixture(scope="session")
def synth(store):
    from dsrl_platform.report.data import load_experiment
    from dsrl_platform.report.scores import Analysis

    return Analysis(load_experiment(SYNTH, store.uri))
