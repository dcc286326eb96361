"""How well do digit slots alone read a synthetic set's digits and motions?

Trains `model.DigitSlots` by itself (no captioner) on the default synthetic set's training
videos with the captioner's recipe: the slot loss (`model.slot_loss`) on the targets the
references name (`parse.slot_targets`), Adam at 2e-3 with a cosine to 5% over `--epochs`, then
`--extra` epochs at 5e-4 (as the self-critical epochs), 16 videos a step, every 4th frame from
a random offset, reversed with probability 0.5, gradient norm clipped at 5 (the slots' own).
Prints, per epoch, on the random test split: two-digit videos whose digits (taken as present:
`DigitSlots.present`) and motions are right, those with the right digits, those whose motions
are right given the true digits, and single-digit videos right. The captioner's slots should
do as well (BENCHMARKS.md: clipped together with the caption loss they did not).

    python bench/probe_caption_slots.py --data-dir ../shared/data [--seed S]
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from dlab.captioning.config import CaptionDataConfig
from dlab.captioning.course import load_features, read_split
from dlab.captioning.dataset import dataset_root
from dlab.captioning.model import DigitSlots, Heads, slot_loss
from dlab.captioning.parse import slot_targets
from dlab.captioning.session import _Schedule  # the captioner's learning-rate factor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--extra", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    root = dataset_root(CaptionDataConfig(), args.data_dir)
    train, test = read_split(root, "training"), read_split(root, "testing")
    xtr = torch.from_numpy(load_features(train.feature_dir, train.ids))  # every frame
    xte = torch.from_numpy(load_features(test.feature_dir, test.ids, 4))
    ytr = torch.tensor(slot_targets(train.captions))
    yte = torch.tensor(slot_targets(test.captions))
    every4 = xtr[:, ::4].reshape(-1, xtr.shape[2])
    mean, std = every4.mean(0), every4.std(0).clamp(min=1e-3)
    slots = DigitSlots(xtr.shape[2], cells=16, hidden=64, dropout=0.3)
    slots.set_counts((ytr >= 0).sum(1).tolist())
    opt = torch.optim.Adam(slots.parameters(), 2e-3)
    per_epoch = math.ceil(len(xtr) / 16)
    xe = args.epochs * per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _Schedule(xe, True, 5e-4 / 2e-3))
    print(f"{len(xtr)} training videos loaded in {time.perf_counter() - t0:.0f} s")
    print("| epoch | two-digit right | two-digit: right digits | two-digit: motions right "
          "given the digits | single-digit right |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    present, k = yte >= 0, (yte >= 0).sum(1)
    for epoch in range(args.epochs + args.extra):
        slots.train()
        for i in torch.randperm(len(xtr)).split(16):
            start = torch.randint(4, (len(i), 1))
            f = xtr[i[:, None], (start + 4 * torch.arange(20)).clamp(max=79)]
            f = torch.where((torch.rand(len(i)) < 0.5)[:, None, None], f.flip(1), f)
            loss = slot_loss(Heads(None, *slots((f - mean) / std)), ytr[i]) / len(i)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(slots.parameters(), 5.0)
            opt.step()
            sched.step()
        slots.eval()
        with torch.no_grad():
            p, m, c = slots((xte - mean) / std)
        digits = slots.present(p, c).bool().eq(present).all(1)
        motions = ((m.argmax(2) == yte) | ~present).all(1)
        print(f"| {epoch + 1} | {int((digits & motions)[k == 2].sum())} / {int((k == 2).sum())} "
              f"| {int(digits[k == 2].sum())} | {int(motions[k == 2].sum())} | "
              f"{int((digits & motions)[k == 1].sum())} / {int((k == 1).sum())} |", flush=True)
    print(f"\n{time.perf_counter() - t0:.0f} s in all")


if __name__ == "__main__":
    main()
