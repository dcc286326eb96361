"""One torch thread for every analysis test (tiny nets on a shared CPU), restored afterwards so
later tests run with the thread count they would have had."""

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread():
    from dlab.torch_engine.threads import torch_threads

    with torch_threads(1):
        yield
