"""Imports preloaded once by the local pool's fork server (see `dlab.studies.runner`).

Every work item forked from the server starts with torch, the training engine, torch._dynamo
(which torch's optimizers import on first use, about a second) and matplotlib already loaded.
Nothing here may start a thread: the server forks after importing this.
"""

import torch  # noqa: F401
import torch._dynamo  # noqa: F401

import dlab.figures  # noqa: F401
import dlab.studies.execute  # noqa: F401
import dlab.torch_engine.evaluate  # noqa: F401
import dlab.torch_engine.classify  # noqa: F401
import dlab.torch_engine.train  # noqa: F401
import dlab.torch_engine.trainer  # noqa: F401
