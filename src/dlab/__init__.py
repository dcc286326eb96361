"""dlab: a deep-learning lab that reproduces the classic course experiments fast and reproducibly."""

import os as _os

# MKL's strict reproducibility mode, set before torch's first matrix product (MKL reads it
# then): its sgemm sums in an order that does not depend on the thread count, so a run gives
# the same bits at 1 and 2 threads (a study's items at any --workers) on AMD CPUs too, where the
# default mode does not. Measured at no cost (bench/bench_mkl_cbwr.py). A user's own value wins.
_os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

__version__ = "0.1.0"
