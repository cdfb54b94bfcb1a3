"""Shared test settings: one torch thread (the 2-core CI machine runs pytest and Ray together)."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    torch.set_num_threads(1)
    yield
