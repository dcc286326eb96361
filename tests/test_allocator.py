"""dlab.allocator: freed tensor-sized blocks are reused instead of page-faulted back in."""

import os
import subprocess
import sys

import pytest

PROBE = """
import resource, sys
import numpy as np
from dlab.allocator import keep_freed_memory
applied = keep_freed_memory()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):  # a training step: activations of several sizes, all freed at its end
    blocks = [np.ones(mib << 18, dtype=np.float32) for mib in (2, 4, 8, 16, 24)]
    del blocks
print(int(applied), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _probe(malloc: str) -> tuple[bool, int]:
    env = {**os.environ, "DLAB_MALLOC": malloc}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    return bool(int(out[0])), int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_freed_blocks_are_reused_not_faulted_back_in():
    applied, faults = _probe("")
    default_applied, default_faults = _probe("default")
    assert applied and not default_applied
    # with glibc's defaults the big blocks go back to the kernel at every "step" and are
    # faulted in again (measured: ~32,600 faults against ~2,600)
    assert default_faults > 10_000
    assert faults < default_faults / 5
