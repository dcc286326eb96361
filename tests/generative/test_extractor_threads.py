"""The FD-dlab extractor's weights do not depend on the caller's torch thread count: on a CPU it
is always trained at one thread, and its key says so."""

import warnings

import torch

from dlab.generative.extractor import get_extractor
from dlab.torch_engine.threads import torch_threads


def test_extractor_is_the_same_at_any_caller_thread_count(data_dir, tmp_path, monkeypatch):
    weights = {}
    for threads in (2, 1):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / f"cache-{threads}"))
        with torch_threads(threads), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ext = get_extractor("mnist", 1, 1000, data_dir, torch.device("cpu"))
            assert torch.get_num_threads() == threads  # restored after training
        assert ext.key.endswith("-cpu1") and ext.folder.name == f"mnist-{ext.key}"
        weights[threads] = [p.detach().clone() for p in ext.trunk.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(weights[2], weights[1]))
