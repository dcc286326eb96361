"""How well do digit slots alone read a synthetic set's digits and motions?

Trains `model.DigitSlots` by itself (no captioner) on the default synthetic set's training
videos, less `--holdout` of them (a fixed random draw) kept to measure on, with the captioner's
recipe: the slot loss (`model.slot_loss`) on the targets the references name
(`parse.slot_targets`), plus the same loss on made-up two-digit videos (`model.mixed_videos`,
each pair of single-digit videos with probability `--mix`, as `train.slot_mix`), Adam at 2e-3
with a cosine to 5% over `--epochs`, then `--extra` epochs at 5e-4 (as the self-critical
epochs), 16 videos a step, every 4th frame from a random offset, reversed with probability
0.5, gradient norm clipped at 5 (the slots' own). Prints, per epoch: two-digit videos whose
digits (taken as present: `DigitSlots.present`) and motions are right, of the held-out
training videos (155 two-digit ones of the 600 by default: a steadier measure than the 23 of
the test split) and of the random test split; of the latter also those with the right digits
and those whose motions are right given the true digits, and single-digit videos right.

    python bench/probe_caption_slots.py --data-dir ../shared/data [--seed S] [--mix P]
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from dlab.captioning.config import CaptionDataConfig
from dlab.captioning.course import load_features, read_split
from dlab.captioning.dataset import dataset_root
from dlab.captioning.model import DigitSlots, Heads, mixed_videos, slot_loss
from dlab.captioning.parse import slot_targets
from dlab.captioning.session import _Schedule  # the captioner's learning-rate factor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--extra", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mix", type=float, default=0.5)
    ap.add_argument("--holdout", type=int, default=600)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    root = dataset_root(CaptionDataConfig(), args.data_dir)
    train, test = read_split(root, "training"), read_split(root, "testing")
    xtr = torch.from_numpy(load_features(train.feature_dir, train.ids)).half()  # every frame
    ytr = torch.tensor(slot_targets(train.captions))
    held = torch.randperm(len(xtr), generator=torch.Generator().manual_seed(123))
    xho, yho = xtr[held[:args.holdout], ::4].float(), ytr[held[:args.holdout]]
    xtr, ytr = xtr[held[args.holdout:]], ytr[held[args.holdout:]]
    xte = torch.from_numpy(load_features(test.feature_dir, test.ids, 4))
    yte = torch.tensor(slot_targets(test.captions))
    every4 = xtr[:, ::4].reshape(-1, xtr.shape[2]).float()
    mean, std = every4.mean(0), every4.std(0).clamp(min=1e-3)
    del every4
    slots = DigitSlots(xtr.shape[2], cells=16, hidden=64, dropout=0.3)
    slots.set_counts((ytr >= 0).sum(1).tolist())
    opt = torch.optim.Adam(slots.parameters(), 2e-3)
    per_epoch = math.ceil(len(xtr) / 16)
    xe = args.epochs * per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _Schedule(xe, True, 5e-4 / 2e-3))
    print(f"{len(xtr)} training videos ({len(xho)} held out) loaded in "
          f"{time.perf_counter() - t0:.0f} s")

    def right(x, y):
        with torch.no_grad():
            p, m, c = slots((x - mean) / std)
        present, k = y >= 0, (y >= 0).sum(1)
        digits = slots.present(p, c).bool().eq(present).all(1)
        motions = ((m.argmax(2) == y) | ~present).all(1)
        two = k == 2
        return (f"{int((digits & motions)[two].sum())} / {int(two.sum())}",
                int(digits[two].sum()), int(motions[two].sum()),
                f"{int((digits & motions)[k == 1].sum())} / {int((k == 1).sum())}")

    print("| epoch | held out: two-digit right | test: two-digit right | test two-digit: right "
          "digits | test two-digit: motions right given the digits | test: single-digit right |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for epoch in range(args.epochs + args.extra):
        slots.train()
        for i in torch.randperm(len(xtr)).split(16):
            start = torch.randint(4, (len(i), 1))
            f = xtr[i[:, None], (start + 4 * torch.arange(20)).clamp(max=79)].float()
            f = torch.where((torch.rand(len(i)) < 0.5)[:, None, None], f.flip(1), f)
            z = (f - mean) / std
            loss = slot_loss(Heads(None, *slots(z)), ytr[i])
            if args.mix > 0:
                zm, ym = mixed_videos(z, ytr[i], args.mix)
                if len(zm):
                    loss = loss + slot_loss(Heads(None, *slots(zm)), ym)
            opt.zero_grad()
            (loss / len(i)).backward()
            torch.nn.utils.clip_grad_norm_(slots.parameters(), 5.0)
            opt.step()
            sched.step()
        slots.eval()
        held_two = right(xho, yho)[0]
        two, digits, motions, single = right(xte, yte)
        print(f"| {epoch + 1} | {held_two} | {two} | {digits} | {motions} | {single} |",
              flush=True)
    print(f"\n{time.perf_counter() - t0:.0f} s in all")


if __name__ == "__main__":
    main()
