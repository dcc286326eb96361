"""The child process of the local pool: `python -m dlab.studies.runner` runs one work item.

Reads {"item": PlannedRun.to_json(), "data_dir", "device", "threads"} as JSON on stdin, sets
torch's thread count, and runs the item. Exit status: 0 done, 2 DlabError (one line on stderr),
130 interrupted, 1 anything else (traceback on stderr).
"""

from __future__ import annotations

import json
import resource
import signal
import sys
import time

from dlab.errors import DlabError


START = time.perf_counter()


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    # the pool forwards Ctrl-C as SIGINT; a parent started in the background ignores SIGINT and
    # children would inherit that
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    job = json.loads(sys.stdin.read())
    try:
        import torch

        if job.get("threads"):
            torch.set_num_threads(int(job["threads"]))
        from dlab.studies.execute import execute_item
        from dlab.studies.plan import PlannedRun

        item = PlannedRun.from_json(job["item"])
        result = execute_item(item, data_dir=job.get("data_dir"), device=job.get("device", "auto"))
    except DlabError as exc:
        print(f"dlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dlab: interrupted", file=sys.stderr)
        return 130
    print(json.dumps(result, sort_keys=True))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # CPU seconds of the whole item (imports, data, training, figures): on a shared machine the
    # wall time says little, the CPU time is what the item would take alone on one core
    print(json.dumps({"cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
                      "wall_s": round(time.perf_counter() - START, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
