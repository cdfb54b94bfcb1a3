"""Shared test settings: one torch thread (the 2-core CI machine runs pytest and Ray together),
and Ctrl-C delivered to the commands the tests start."""

import signal

import pytest
import torch

# A suite started in the background by a non-interactive shell (`bash .ci/run &`) inherits
# SIGINT ignored, and so would every command it starts: the tests that press Ctrl-C on one
# would see it run on. Ignored dispositions survive exec, handlers do not: un-ignore it here.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _one_thread():
    """Every test starts on one torch thread (tiny tensors: more threads only add contention
    on shared CPUs), whatever an earlier test set."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
