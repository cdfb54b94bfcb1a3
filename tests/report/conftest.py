"""Fixtures: the synthetic store (report_synth.py says what is in it) and its analysis."""

import pytest
from report_synth import GRAESSER, SYNTH, write_store


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    return write_store(tmp_path_factory.mktemp("mlflow"))


@pytest.fixture(scope="session")
def synth(store):
    from dsrl_platform.report.data import load_experiment
    from dsrl_platform.report.scores import Analysis

    return Analysis(load_experiment(SYNTH, store.uri))


@pytest.fixture(scope="session")
def graesser(store):
    """The graesser experiment scored as Graesser did (the last 10% of evaluations)."""
    from dsrl_platform.report.data import load_experiment
    from dsrl_platform.report.scores import Analysis, Options

    return Analysis(load_experiment(GRAESSER, store.uri), Options(score="last_10_percent"))


@pytest.fixture(scope="session")
def reports(store, tmp_path_factory):
    """The CLI run as a user would: {name: (out dir, stdout)} for four reports."""
    import contextlib
    import io

    from report_synth import GRAESSER_1M, SOKAR_1M

    from dsrl_platform.cli import main

    root = tmp_path_factory.mktemp("reports")
    out = {}
    for name, experiment, dashboard in [("sokar", SYNTH, "dashboards/sokar2022.yaml"),
                                        ("graesser", GRAESSER, "graesser2022"),
                                        ("sokar1m", SOKAR_1M, "sokar2022"),
                                        ("graesser1m", GRAESSER_1M, "graesser2022")]:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = main(["report", experiment, "--dashboard", dashboard, "--out", str(root / name),
                         "--tracking-uri", store.uri])
        assert code == 0, buf.getvalue()
        out[name] = (root / name, buf.getvalue())
    return out
