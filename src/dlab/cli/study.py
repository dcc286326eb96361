"""`dlab study run|status|list|enqueue|work`: run declarative studies locally or as workers."""

from __future__ import annotations

import argparse
import signal

from dlab.cli.common import add_data_dir, add_device, add_runs_dir, runs_dir
from dlab.errors import DlabError


def register(subparsers) -> None:
    parser = subparsers.add_parser("study", help="run a study: questions x variants, resumable")
    sub = parser.add_subparsers(dest="study_command", metavar="ACTION", required=True)

    p = sub.add_parser("run", help="train every variant of a study (skips finished runs)")
    _add_study(p)
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads per item (default: the study file's `threads`, else "
                   "CPU cores // workers for models whose results do not depend on it, all "
                   "cores for the others)")
    p.add_argument("--only", default="", help="comma-separated question keys (with what they "
                   "depend on), e.g. q1,q13")
    p.add_argument("--dry-run", action="store_true", help="print the plan, train nothing")
    add_data_dir(p)
    add_device(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", help="which variants are done, running, pending")
    _add_study(p)
    p.add_argument("--storage", default=None, help="also show the shared queue's trial states")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("list", help="list the built-in studies")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("enqueue", help="create the shared queue once: one trial per work item")
    _add_study(p)
    p.add_argument("--storage", required=True, help="RDB URL, e.g. postgresql://user@host/db")
    p.set_defaults(func=cmd_enqueue)

    p = sub.add_parser("work", help="a worker: take and run the next waiting item until none is")
    _add_study(p)
    p.add_argument("--storage", required=True, help="the RDB URL the study was enqueued in")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads (default: the study file's `threads`, else torch's)")
    p.add_argument("--heartbeat", type=int, default=10, help="heartbeat interval (s)")
    p.add_argument("--grace", type=int, default=30,
                   help="a trial silent this long (s) counts as dead and is retried")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between queue polls")
    add_data_dir(p)
    add_device(p)
    p.set_defaults(func=cmd_work)


def _add_study(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", metavar="FILE|NAME", help="a study TOML file or built-in name")
    add_runs_dir(parser)


def _interrupt_on_sigterm() -> None:
    """Treat SIGTERM (schedulers, `kill`) like Ctrl-C: stop cleanly, keep finished runs."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _plan(args: argparse.Namespace):
    from dlab.studies import load_study, plan_study

    return plan_study(load_study(args.study), runs_dir(args))


def cmd_run(args: argparse.Namespace) -> int:
    from dlab.studies.local import LocalConfig, run_plan

    if args.workers < 1:
        raise DlabError(f"--workers {args.workers}: expected an integer >= 1")
    if args.threads < 0:
        raise DlabError(f"--threads {args.threads}: expected an integer >= 1 (or 0: dlab "
                        "chooses)")
    plan = _plan(args)
    keys_only = {k.strip() for k in args.only.split(",") if k.strip()}
    if args.only and not keys_only:
        raise DlabError(f"--only {args.only!r}: expected comma-separated question keys, e.g. "
                        "q1,q13; the study has: " + ", ".join(q.key for q in plan.study.questions))
    if args.only:
        unknown = keys_only - {q.key for q in plan.study.questions}
        if unknown:
            raise DlabError(f"--only {args.only}: unknown question(s) {', '.join(sorted(unknown))}")
        plan = plan.only(keys_only)
    listed = plan.variant_count()
    if args.only:
        listed = sum(len(keys) for (q, _), keys in plan.index.items() if q in keys_only)
    trainings = sum(r.kind != "eval" for r in plan.runs)
    print(f"study {plan.study.name}: {listed} variants listed -> {len(plan.runs)} "
          f"distinct items ({trainings} trainings) in {plan.root}")
    if args.dry_run:
        _print_items(plan)
        return 0
    _interrupt_on_sigterm()
    from dlab.runs import one_line_os_errors

    with one_line_os_errors():  # a read-only or full runs dir: one line naming the path
        out = run_plan(plan, LocalConfig(args.workers, args.threads or plan.study.threads,
                                         args.data_dir, args.device),
                       echo=lambda line: print(line, flush=True))
    print(f"ran {len(out.ran)} items ({sum(plan.by_key()[k].kind != 'eval' for k in out.ran)} "
          f"trainings), {len(out.skipped)} already done, {len(out.failed)} failed, "
          f"wall {out.wall_s:.1f} s")
    for key, reason in out.failed.items():
        print(f"failed {key}: {reason}")
    return 1 if out.failed else 0


def _print_items(plan) -> None:
    from dlab.runs import check_run

    for item in plan.runs:
        uses = ", ".join(f"{q}/{label}" for q, label in item.uses)
        after = f" (continues {item.depends_on})" if item.continues else ""
        status = item.status()
        print(f"{item.key}  {item.kind:8s} {status:11s} {uses}{after}")
        if status == "damaged":
            print(f"  damaged: {check_run(item.run_dir)['damaged']}")


def cmd_status(args: argparse.Namespace) -> int:
    plan = _plan(args)
    counts: dict[str, int] = {}
    print(f"study {plan.study.name} in {plan.root}")
    _print_items(plan)
    for item in plan.runs:
        status = item.status()
        counts[status] = counts.get(status, 0) + 1
    print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + f" of {len(plan.runs)} items")
    if args.storage:
        from dlab.studies.distributed import trial_counts

        per_key = trial_counts(plan, args.storage)
        totals: dict[str, int] = {}
        for states in per_key.values():
            for state, n in states.items():
                totals[state] = totals.get(state, 0) + n
        print("queue: " + (", ".join(f"{n} {s.lower()}" for s, n in sorted(totals.items()))
                           or "empty"))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from dlab.studies import builtin_studies, load_study

    from dlab.tasks import DEFAULT_TASK

    for name, path in builtin_studies().items():
        try:
            study = load_study(path)
        except DlabError as exc:  # one broken file must not hide the others
            print(f"{name:16s} cannot be loaded: {exc}")
            continue
        n = sum(len(q.variants) for q in study.questions)
        tasks = sorted({str(study.base.get("task", DEFAULT_TASK))}
                       | {str(v.overrides["task"]) for q in study.questions for v in q.variants
                          if "task" in v.overrides})
        print(f"{name:16s} {study.course or '(no course named)'}")
        print(f"{'':16s} {len(study.questions)} questions, {n} variants; task: "
              f"{', '.join(tasks)}")
        if study.description:
            print(f"{'':16s} {' '.join(study.description.split())[:150]}")
    return 0


def cmd_enqueue(args: argparse.Namespace) -> int:
    from dlab.studies.distributed import enqueue_plan

    plan = _plan(args)
    added, present = enqueue_plan(plan, args.storage)
    print(f"study {plan.study.name}: enqueued {added} work items ({present} already queued)")
    return 0


def cmd_work(args: argparse.Namespace) -> int:
    """Exit 0 when every item of the queue is done, 1 when some failed for good, 128 + the
    signal's number (130 Ctrl-C, 143 SIGTERM) when interrupted; the held item is handed back."""
    from dlab.studies.distributed import WorkerConfig, work

    plan = _plan(args)
    cfg = WorkerConfig(args.storage, args.data_dir, args.device, args.heartbeat, args.grace,
                       poll_s=args.poll, threads=args.threads or plan.study.threads)
    got: list[int] = []

    def handler(signum, frame):
        got.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    try:
        out = work(plan, cfg, echo=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        print("dlab: interrupted", flush=True)
        return 128 + (got[0] if got else signal.SIGINT)
    print(f"worker done: ran {len(out.ran)} items; queue: "
          + ", ".join(f"{n} {s}" for s, n in sorted(out.states.items())), flush=True)
    for key, why in out.failed.items():
        print(f"failed {key}: {why}")
    return 1 if out.failed else 0
