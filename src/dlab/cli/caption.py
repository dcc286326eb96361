"""`dlab caption synth|train|predict|score`: the video-captioning commands (thin)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlab.captioning.synthspec import SynthSpec
from dlab.cli.common import add_data_dir, add_device, add_runs_dir, runs_dir
from dlab.errors import DlabError


# `dlab caption synth`'s options: SynthSpec fields, with their defaults in the help
SYNTH_FLAGS = (
    ("train", int, "training videos"),
    ("test", int, "random test split videos"),
    ("compositional", int, "compositional split videos"),
    ("seed", int, "draws of digits, motions and captions"),
    ("two_digit_fraction", float, "share of videos with two digits"),
    ("min_refs", int, "references per video, at least"),
    ("max_refs", int, "references per video, at most"),
    ("digit_pool", int, "MNIST images per digit (0 = all; without MNIST: glyphs)"),
    ("feature_map", int, "1: random filters only; 2: also class evidence per place"),
)


def cmd_synth(args: argparse.Namespace) -> int:
    from dlab.captioning.synth import generate

    spec = SynthSpec(**{key: getattr(args, key) for key, _, _ in SYNTH_FLAGS})
    out = generate(spec, args.out, args.data_dir, progress=None if args.quiet else print)
    total = spec.train + spec.test + spec.compositional
    print(f"wrote {total} videos ({total * 80 * 4096 * 8 / 1e9:.2f} GB of features) to {out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from dlab.config import load_toml, merge, parse_set_args
    from dlab.runs import create_run_dir, timestamp
    from dlab.tasks import get_task
    from dlab.torch_engine.trainer import fit

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    task = get_task("caption")
    data = load_toml(args.config) if args.config else {}
    cfg = task.resolve(merge(data, parse_set_args(args.set)))
    run_dir = Path(args.resume) if args.resume else create_run_dir(
        runs_dir(args), f"{timestamp()}-caption-{cfg.hash()[:8]}")
    print(f"run directory: {run_dir}")
    # the trainer's own progress line assumes classification metrics (acc, val_acc)
    result = fit(task, cfg, run_dir, data_dir=args.data_dir, device=args.device,
                 progress=False, callbacks=() if args.quiet else (_EpochLine(cfg.train.epochs),))
    f = result["final"]
    print(f"{result['status']}: CIDEr-D {f.get('cider_d')}, BLEU-4 {f.get('bleu4')}, "
          f"course BLEU@1 {f.get('bleu1_course')} → {run_dir}")
    return 0 if result["status"] in ("finished", "pruned") else 1


class _EpochLine:
    """One line per epoch: loss (or the self-critical reward), validation CIDEr-D, BLEU-4,
    course BLEU@1, named right."""

    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_fit_start(self, run) -> None:
        pass

    def on_epoch_end(self, run, row) -> None:
        def num(key):
            v = row.get(key)
            return "–" if v is None else f"{v:.4f}"

        train = (f"loss {num('loss')}" if row.get("scst_reward") is None
                 else f"reward {num('scst_reward')}")  # self-critical: samples' CIDEr-D
        print(f"epoch {row['epoch']}/{self.epochs}  {train}  val_loss "
              f"{num('val_loss')}  CIDEr-D {num('cider_d')}  BLEU-4 {num('bleu4')}  BLEU@1 "
              f"{num('bleu1_course')}  named right {num('named_right')}  "
              f"{row['time_s']:.1f}s", flush=True)

    def on_fit_end(self, run, result) -> None:
        pass


def _ids_for(feature_dir: Path, ids: Path | None) -> tuple[Path, Path]:
    """(the folder of <id>.npy files, id.txt): FEATURE_DIR may be `<split>_data` or its feat/."""
    feat = feature_dir / "feat" if (feature_dir / "feat").is_dir() else feature_dir
    if ids is None:
        for cand in (feature_dir / "id.txt", feat.parent / "id.txt"):
            if cand.is_file():
                ids = cand
                break
    if ids is None:
        raise DlabError(f"no id.txt in {str(feature_dir)!r} or beside it; give --ids")
    return feat, ids


def cmd_predict(args: argparse.Namespace) -> int:
    from dlab.captioning.predict import predict_file

    feat, ids = _ids_for(Path(args.feature_dir), args.ids)
    n = predict_file(args.checkpoint, feat, ids, args.out, decode=args.decode,
                     device=args.device)
    print(f"wrote {n} captions to {args.out}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from dlab.captioning.course import read_labels
    from dlab.captioning.scores import format_scores, read_predictions, score_predictions

    labels = read_labels(args.labels, unique=False)
    train_path = args.train_labels or Path(args.labels).parent / "training_label.json"
    train = read_labels(train_path) if Path(train_path).is_file() else None
    result = score_predictions(read_predictions(args.predictions), labels, train)
    for line in format_scores(result):
        print(line)
    if train is None:
        print(f"note: no training labels at {str(train_path)!r}: no constant-caption baseline")
    return 0


def register(sub) -> None:
    p = sub.add_parser("caption", help="video captioning: synthetic set, train, predict, score")
    cs = p.add_subparsers(dest="caption_command", metavar="COMMAND", required=True)

    q = cs.add_parser("synth", help="write a synthetic captioned moving-digit set in the "
                                    "course layout")
    q.add_argument("out", type=Path, help="a new folder")
    defaults = SynthSpec()
    for key, kind, text in SYNTH_FLAGS:
        q.add_argument("--" + key.replace("_", "-"), type=kind, default=getattr(defaults, key),
                       choices=(1, 2) if key == "feature_map" else None,
                       help=f"{text} (%(default)s)")
    q.add_argument("--quiet", action="store_true")
    add_data_dir(q)
    q.set_defaults(func=cmd_synth)

    q = cs.add_parser("train", help="train the captioner (task 'caption') into a run directory")
    q.add_argument("--config", type=Path, help="a TOML file with [data] [model] [optim] [train]")
    q.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set data.root=path (repeatable)")
    q.add_argument("--resume", metavar="RUN_DIR", help="continue this run directory")
    q.add_argument("--threads", type=int, help="torch CPU threads (1 is fastest on a busy CPU)")
    q.add_argument("--quiet", action="store_true")
    add_data_dir(q), add_runs_dir(q), add_device(q)
    q.set_defaults(func=cmd_train)

    q = cs.add_parser("predict", help="write '<id>,<caption>' per video of id.txt")
    q.add_argument("checkpoint", help="run directory or <run>/checkpoints/best|last")
    q.add_argument("feature_dir", help="<split>_data (with id.txt and feat/) or its feat/")
    q.add_argument("out", type=Path)
    q.add_argument("--ids", type=Path, help="id.txt (default: in or beside FEATURE_DIR)")
    q.add_argument("--decode", choices=("greedy", "beam"), help="default: the run's train.decode")
    add_device(q)
    q.set_defaults(func=cmd_predict)

    q = cs.add_parser("score", help="course BLEU@1, BLEU-4, CIDEr-D, constant baselines")
    q.add_argument("predictions", type=Path, help="the '<id>,<caption>' file")
    q.add_argument("--labels", type=Path, required=True, help="testing_label.json")
    q.add_argument("--train-labels", type=Path,
                   help="training_label.json for the constant baseline (default: beside --labels)")
    q.set_defaults(func=cmd_score)
