"""`dlab gan train|sample|score`: GANs (task "gan") from the command line."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from dlab.cli.common import add_data_dir, add_device, add_runs_dir, runs_dir
from dlab.config import dotted_to_nested, load_toml, merge, parse_set_args
from dlab.errors import DlabError
from dlab.runs import CONFIG, create_run_dir, read_json, timestamp

FID_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   + FID_WEIGHTS)
FLAG_KEYS = {"kind": "model.kind", "dataset": "data.dataset", "epochs": "train.epochs",
             "seed": "train.seed", "batch_size": "train.batch_size"}


def _config(args: argparse.Namespace):
    from dlab.tasks import get_task

    data = load_toml(args.config) if args.config else {}
    flags = {key: getattr(args, attr) for attr, key in FLAG_KEYS.items()
             if getattr(args, attr, None) is not None}
    data = merge(merge(data, dotted_to_nested(flags)), parse_set_args(args.set))
    return get_task("gan").resolve(data)


def _epoch_printer(epochs: int):
    from dlab.tasks import epoch_hook

    def show(row: dict) -> None:
        parts = [f"epoch {row['epoch']}/{epochs}"]
        for key in ("d_loss", "g_loss", "wasserstein", "fd_dlab", "fd_dlab_floor", "kid_dlab"):
            if row.get(key) is not None:
                parts.append(f"{key} {row[key]:.4g}")
        parts.append(f"{row['time_s']:.1f}s")
        print("  ".join(parts), flush=True)

    return epoch_hook(show)


def cmd_train(args: argparse.Namespace) -> int:
    from dlab.tasks import get_task
    from dlab.torch_engine.trainer import fit

    task = get_task("gan")
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / CONFIG).is_file():
            raise DlabError(f"--resume {str(run_dir)!r}: not a run directory (no {CONFIG})")
        cfg, fresh = task.resolve(read_json(run_dir / CONFIG)), False
    else:
        cfg, fresh = _config(args), True
        stem = f"{timestamp()}-gan-{cfg.data.dataset}-{cfg.model.kind}-{cfg.hash()[:8]}"
        run_dir = create_run_dir(runs_dir(args), stem)
    print(f"run directory: {run_dir}")
    callbacks = [] if args.quiet else [_epoch_printer(cfg.train.epochs)]
    try:
        result = fit(task, cfg, run_dir, data_dir=args.data_dir, device=args.device,
                     progress=False, callbacks=callbacks)
    except DlabError:
        if fresh and not (run_dir / CONFIG).exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    f = result["final"]
    print(f"{result['status']}: FD-dlab {f.get('fd_dlab', float('nan')):.4g} (floor "
          f"{f.get('fd_dlab_floor', float('nan')):.4g} at N={f.get('eval_n')}), best "
          f"{result['best'].get('fd_dlab', float('nan')):.4g} at epoch {result['best_epoch']} "
          f"→ {run_dir}")
    return 0 if result["status"] in ("finished", "pruned") else 1


def cmd_sample(args: argparse.Namespace) -> int:
    from dlab.generative.score import sample_grid
    from dlab.torch_engine.evaluate import resolve_device

    out = sample_grid(args.checkpoint, args.out, args.n, args.seed,
                      resolve_device(args.device), use_ema=not args.no_ema)
    print(f"wrote {args.n} samples to {out}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from dlab.generative import score
    from dlab.torch_engine.evaluate import resolve_device

    device = resolve_device(args.device)
    if args.metric == "fid":
        if not args.inception_weights:
            raise DlabError(f"--metric fid needs --inception-weights {FID_WEIGHTS} (pytorch-fid's "
                            f"FID Inception weights, from {FID_WEIGHTS_URL})")
        result = score.fid_checkpoint(args.checkpoint, args.inception_weights, args.n,
                                      args.seed, args.data_dir, device, not args.no_ema)
        text = (f"FID {result['fid']:.3f}  KID {1e3 * result['kid']:.3f}e-3 ± "
                f"{1e3 * result['kid_std']:.3f}e-3  (N={result['n']} vs "
                f"{result['reference_n']} {result['reference']}, weights sha256 "
                f"{result['weights_sha256'][:12]}, {result['resize']})")
    else:
        result = score.score_checkpoint(args.checkpoint, args.n, args.seed, args.data_dir,
                                        device, not args.no_ema)
        text = (f"FD-dlab {result['fd_dlab']:.4g} (floor {result['fd_dlab_floor']:.4g})  "
                f"KID-dlab {1e3 * result['kid_dlab']:.3f}e-3 (floor "
                f"{1e3 * result['kid_dlab_floor']:.3f}e-3)  N={result['eval_n']} vs "
                f"{result['reference']}  classes ≥3%: {result['classes_covered']}  "
                f"KL to uniform {result['kl_uniform']:.3f}"
                + (f"  label acc {100 * result['label_acc']:.1f}%" if "label_acc" in result
                   else "")
                + f"  [extractor {result['extractor_key']}, test acc "
                  f"{100 * result['extractor_test_acc']:.2f}%]")
    print(json.dumps(result) if args.json else text)
    return 0


def register(sub) -> None:
    gan = sub.add_parser("gan", help="GANs: train, sample a grid, score a checkpoint")
    cmds = gan.add_subparsers(dest="gan_command", metavar="SUBCOMMAND", required=True)

    p = cmds.add_parser("train", help="train a GAN (dcgan, wgan, wgan-gp, acgan)")
    p.add_argument("--config", type=Path, help="a TOML file with [data] [model] [optim] "
                   "[train] [eval]")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key, e.g. --set optim.n_critic=3 (repeatable)")
    p.add_argument("--kind", help="dcgan (default), wgan, wgan-gp or acgan")
    p.add_argument("--dataset", help="cifar10 (default), mnist or fashion-mnist")
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--batch-size", type=int, help="default: the kind's (128/32/32/64)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a killed run")
    p.add_argument("--quiet", action="store_true")
    add_data_dir(p), add_runs_dir(p), add_device(p)
    p.set_defaults(func=cmd_train)

    p = cmds.add_parser("sample", help="a grid PNG of samples from a GAN checkpoint")
    p.add_argument("checkpoint", help="run directory or <run>/checkpoints/best|last")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("samples.png"))
    p.add_argument("--no-ema", action="store_true", help="sample G, not its EMA")
    add_device(p)
    p.set_defaults(func=cmd_sample)

    p = cmds.add_parser("score", help="FD-dlab / KID-dlab / coverage (or --metric fid)")
    p.add_argument("checkpoint", help="run directory or <run>/checkpoints/best|last")
    p.add_argument("--metric", choices=("dlab", "fid"), default="dlab")
    p.add_argument("--inception-weights", type=Path, metavar="FILE",
                   help=f"{FID_WEIGHTS} (for --metric fid)")
    p.add_argument("--n", type=int, default=10000, help="generated samples (default 10000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-ema", action="store_true", help="score G, not its EMA")
    p.add_argument("--json", action="store_true")
    add_data_dir(p), add_device(p)
    p.set_defaults(func=cmd_score)
