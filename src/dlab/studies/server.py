"""Preloaded by the local pool's fork server only (never import it elsewhere): the server dies
with the `dlab study run` process that started it.

The server's children already die with the server (`runner._die_with_parent`), but the server
itself would outlive a killed pool: multiprocessing keeps it alive until every client holding
its "alive" pipe is gone, and its own children hold that pipe. So a SIGKILLed pool left its
items training, holding their run locks.
"""

import os
import signal

from dlab.studies.runner import _die_with_parent

_die_with_parent()
if os.getppid() == 1:  # the pool died before the request above took effect
    os.kill(os.getpid(), signal.SIGKILL)
