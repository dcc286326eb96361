"""Task "caption"'s session: what the shared trainer (`dlab.torch_engine.trainer`) drives.

Data: every training video's features (every `frame_stride`-th frame, float32) and all its
reference captions as ids stay in memory; an epoch is `captions_per_video` (video, random
reference) pairs per video, `batch_size` videos per step in a random order (both drawn from the
session's generator; each video is encoded once per step for all its captions). A step is one
Adam update of the per-caption mean cross-entropy under scheduled sampling, plus
`train.tag_weight` times the tagger's binary cross-entropy (with `model.tags`; the tag words
are picked from the training captions, `text.tag_words`, and kept in the checkpoint), plus
`train.slot_weight` times the digit slots' loss (with `model.slots`; the targets are the
digits and motions the references name, `parse.slot_targets`; with `train.slot_mix` also on
made-up two-digit videos, `model.mixed_videos`, of the batch's single-digit ones). With
`train.temporal_jitter` every frame stays in memory and each draw of a video takes every
`frame_stride`-th frame from a random offset. The last `train.scst_epochs` epochs are
self-critical (Rennie et al. 2017): a step samples `train.scst_samples` captions per video
(`decode.sample`), rewards each by its CIDEr-D against the video's training references
(document frequencies of the training references), and follows the policy gradient of the
reward minus the mean reward of the video's other samples (Luo 2020), at the constant learning
rate `train.scst_lr`; the epoch's row has `scst_reward` (the samples' mean reward) instead of
`loss`. Each epoch
evaluates greedy captions of the validation split (`data.val_split`): CIDEr-D (the primary
metric), corpus BLEU-4, the course BLEU@1, the "named right" rate on synthetic sets, and the
validation loss. The final evaluation adds beam search, the compositional split and the best
constant caption (found from the training captions only, of at most
`CONSTANT_SEARCH_VIDEOS` training videos), and writes the predictions in the
course format (`predictions_<split>_<decoder>.txt`).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn.functional as F

from dlab.captioning import decode, scores
from dlab.captioning.config import CaptionConfig, sampling_probability
from dlab.captioning.course import FEATURE_DIM, CaptionSplit, load_features, read_split
from dlab.captioning.dataset import dataset_root
from dlab.captioning.model import (S2VT, Heads, caption_loss, mixed_videos, slot_loss,
                                   slot_pairs)
from dlab.captioning.parse import named_right_rate, slot_targets
from dlab.captioning.synth import read_info
from dlab.captioning.text import Vocabulary, tag_targets, tag_words
from dlab.errors import DlabError
from dlab.tasks.base import OpenContext
from dlab.torch_engine import checkpoint as ckpt

MAIN = ckpt.MAIN
CONSTANT_SEARCH_VIDEOS = 250


class _Split:
    """One split on the device: features, padded caption ids (all references) and owners."""

    def __init__(self, split: CaptionSplit, vocab: Vocabulary, cfg: CaptionConfig, device,
                 stride: int | None = None):
        self.split = split
        stride = cfg.data.frame_stride if stride is None else stride
        self.feats = torch.from_numpy(load_features(split.feature_dir, split.ids,
                                                    stride)).to(device)
        encoded = [vocab.encode(c, cfg.data.max_words) for caps in split.captions for c in caps]
        width = max(len(e) for e in encoded)
        self.caps = torch.zeros((len(encoded), width), dtype=torch.long)
        for i, e in enumerate(encoded):
            self.caps[i, :len(e)] = torch.tensor(e)
        self.caps = self.caps.to(device)
        counts = torch.tensor([len(c) for c in split.captions])
        self.first = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)[:-1]]).to(device)
        self.counts = counts.to(device)
        self.owner = torch.repeat_interleave(torch.arange(len(split)), counts).to(device)


class CaptionSession:
    loss_keys = ("loss", "scst_loss")
    eval_keys = ("val_loss", "cider_d", "bleu4", "bleu1_course", "named_right", "distinct")

    def __init__(self, cfg: CaptionConfig, ctx: OpenContext):
        self.cfg, self.device, self.run_dir = cfg, ctx.device, Path(ctx.run_dir)
        self.root = dataset_root(cfg.data, ctx.data_dir)
        self.info_json = read_info(self.root)
        train = read_split(self.root, "training")
        self.vocab = Vocabulary.build([c for caps in train.captions for c in caps],
                                      cfg.data.min_count)
        # temporal jitter: every frame kept, each step takes every frame_stride-th from a random
        # offset (`_frames`)
        self.jitter = cfg.train.temporal_jitter and cfg.data.frame_stride > 1
        self.train = _Split(train, self.vocab, cfg, self.device, 1 if self.jitter else None)
        self.val = _Split(read_split(self.root, cfg.data.val_split), self.vocab, cfg, self.device)
        other = "compositional" if cfg.data.val_split == "testing" else "testing"
        self.other = (_Split(read_split(self.root, other), self.vocab, cfg, self.device)
                      if (self.root / f"{other}_label.json").is_file() else None)
        m = cfg.model
        # model.tags is at most: fewer when fewer words qualify (the checkpoint keeps the words)
        self.tag_words = tag_words(train.captions, m.tags, m.tag_max_share) if m.tags else []
        if m.tags and not self.tag_words:
            raise DlabError(f"model.tags = {m.tags}: no word of the training captions is used "
                            f"by at most model.tag_max_share = {m.tag_max_share} of the videos")
        self.tag_targets = torch.tensor(tag_targets(train.captions, self.tag_words),
                                        device=self.device) if m.tags else None
        self.slot_targets = None
        if m.slots:
            targets = slot_targets(train.captions)
            if all(t < 0 for row in targets for t in row):
                raise DlabError("model.slots = true: no training caption names a digit and its "
                                "motion (as dlab.captioning.parse reads them); set "
                                "model.slots = false for captions other than the synthetic "
                                "set's")
            self.slot_targets = torch.tensor(targets, device=self.device)
        self.model = S2VT(len(self.vocab), FEATURE_DIM,
                          dataclasses.replace(m, tags=len(self.tag_words))).to(self.device)
        if m.tags:
            self.model.set_tag_words([self.vocab.index[w] for w in self.tag_words])
        if m.slots:
            self.model.set_slot_words(list(self.vocab.words))
            self.model.slots.set_counts((self.slot_targets >= 0).sum(1).tolist())
        self.model.set_feature_stats(self.train.feats[:, ::cfg.data.frame_stride])
        # the digit slots learn from their own loss alone (the decoder reads them without
        # gradients), so their gradient is clipped on its own: clipped together with the
        # caption loss's, their steps shrank with it and they read 9 / 23 two-digit test
        # videos right instead of 12-17 / 23 (BENCHMARKS.md)
        slots = set(map(id, self.model.slots.parameters())) if self.model.slots else set()
        self.clip_groups = [[p for p in self.model.parameters() if id(p) not in slots],
                            [p for p in self.model.parameters() if id(p) in slots]]
        opt = torch.optim.Adam(self.model.parameters(), lr=cfg.optim.lr,
                               weight_decay=cfg.optim.weight_decay)
        self.steps_per_epoch = math.ceil(len(train) / cfg.train.batch_size)
        t = cfg.train
        self.xe_steps = self.steps_per_epoch * t.xe_epochs
        # a scheduler always (the trainer checkpoints the dict); "constant" multiplies by 1
        lam = _Schedule(self.xe_steps, cfg.optim.schedule == "cosine",
                        t.scst_lr / cfg.optim.lr if t.scst_epochs else None)
        self.models = {MAIN: self.model}
        self.optimizers = {MAIN: opt}
        self.schedulers = {MAIN: torch.optim.lr_scheduler.LambdaLR(opt, lam)}
        self.generator = torch.Generator(device=self.device).manual_seed(cfg.train.seed)
        self.params = sum(p.numel() for p in self.model.parameters())
        self.steps_done = 0
        self.train_refs = [(v, list(c)) for v, c in zip(train.ids, train.captions)]
        if t.scst_epochs:  # the reward: CIDEr-D against the training references
            self.cider = scores.CiderD(train.captions)
            self.ref_vectors = [[self.cider.vector(r) for r in caps] for caps in train.captions]
            self.cand_vectors: dict[str, Any] = {}
        self.last_greedy: dict[str, Any] = {}

    # the loop ------------------------------------------------------------------------------
    def batches(self, epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """`batch_size` videos per batch, each with `captions_per_video` random references
        (drawn with replacement): (videos (B,), caption rows (B * k,))."""
        s, k = self.train, self.cfg.train.captions_per_video
        videos = torch.randperm(len(s.split), generator=self.generator, device=self.device)
        owners = videos.repeat_interleave(k)
        pick = (torch.rand(len(owners), generator=self.generator, device=self.device)
                * s.counts[owners]).long()
        caps = s.first[owners] + pick
        bs = self.cfg.train.batch_size
        for i in range(0, len(videos), bs):
            yield videos[i:i + bs], caps[i * k:(i + bs) * k]

    def _frames(self, videos: torch.Tensor) -> torch.Tensor:
        """The training features of `videos` (B, T, F): every `frame_stride`-th frame, from a
        random offset per video with `train.temporal_jitter`, reversed in time with probability
        `train.reverse_prob`."""
        feats = self.train.feats[videos]
        if self.jitter:
            stride = self.cfg.data.frame_stride
            t = len(range(0, feats.shape[1], stride))
            start = torch.randint(stride, (len(videos), 1), generator=self.generator,
                                  device=self.device)
            index = (start + stride * torch.arange(t, device=self.device)).clamp(
                max=feats.shape[1] - 1)
            feats = feats[torch.arange(len(videos), device=self.device)[:, None], index]
        if self.cfg.train.reverse_prob > 0:
            flip = torch.rand(len(videos), generator=self.generator,
                              device=self.device) < self.cfg.train.reverse_prob
            feats = torch.where(flip[:, None, None], feats.flip(1), feats)
        return feats

    def sample_prob(self) -> float:
        return sampling_probability(self.cfg.train, self.steps_done // self.steps_per_epoch)

    def step(self, batch) -> dict[str, Any]:
        videos, caps = batch
        if self.steps_done >= self.xe_steps:
            return self._scst_step(videos)
        ids = self.train.caps[caps]
        p = self.sample_prob()
        k = self.cfg.train.captions_per_video
        owners = torch.arange(len(videos), device=self.device).repeat_interleave(k)
        feats = self._frames(videos)
        logits, heads = self.model(feats, ids[:, :-1], p, self.generator, owners,
                                   with_heads=True)
        loss = caption_loss(logits, ids[:, 1:]).sum() / k  # per video: its captions' mean
        self._update(loss, heads, videos, feats)
        n = len(videos)
        return {"n": n, "loss": loss.detach(),
                "sample_prob": torch.tensor(p * n, device=self.device)}

    def _scst_step(self, videos: torch.Tensor) -> dict[str, Any]:
        """Self-critical: `scst_samples` sampled captions per video, each weighted by its
        reward minus the mean reward of the video's other samples."""
        k = self.cfg.train.scst_samples
        feats = self._frames(videos)
        enc, keys, state, heads = self.model.encode_tagged(feats)
        ids, logp = decode.sample(self.model, (enc, keys, state), k, self.cfg.data.max_words,
                                  self.generator)
        owners = videos.repeat_interleave(k).tolist()
        reward = torch.tensor([self._reward(v, self.vocab.decode(x))
                               for v, x in zip(owners, ids.tolist())]).view(-1, k)
        baseline = (reward.sum(1, keepdim=True) - reward) / (k - 1)
        advantage = (reward - baseline).view(-1).to(self.device)
        loss = -(advantage * logp).sum() / k  # per video: its samples' mean
        self._update(loss, heads, videos, feats)
        n = len(videos)
        return {"n": n, "scst_loss": loss.detach(),
                "scst_reward": reward.sum().to(self.device) / k}

    def _reward(self, video: int, caption: str) -> float:
        """CIDEr-D of `caption` against training video `video`'s references."""
        vec = self.cand_vectors.get(caption)
        if vec is None:
            if len(self.cand_vectors) > 200_000:
                self.cand_vectors.clear()
            vec = self.cand_vectors[caption] = self.cider.vector(caption)
        return self.cider.score_vectors(vec, self.ref_vectors[video])

    def _update(self, loss: torch.Tensor, heads: Heads, videos: torch.Tensor,
                feats: torch.Tensor) -> None:
        """One optimizer step on `loss` (summed over the videos) plus the tag and slot
        losses (the latter also on made-up two-digit videos of `feats`, `train.slot_mix`)."""
        total, t = loss, self.cfg.train
        if heads.tags is not None:
            total = total + t.tag_weight * F.binary_cross_entropy_with_logits(
                heads.tags, self.tag_targets[videos], reduction="sum")
        if heads.presence is not None:
            total = total + t.slot_weight * slot_loss(heads, self.slot_targets[videos])
            if t.slot_mix > 0:
                z, targets = mixed_videos(self.model.standardized(feats),
                                          self.slot_targets[videos], t.slot_mix, self.generator)
                if len(z):
                    mixed = Heads(None, *self.model.slots(z))
                    total = total + t.slot_weight * slot_loss(mixed, targets)
        opt = self.optimizers[MAIN]
        opt.zero_grad(set_to_none=True)
        (total / len(videos)).backward()
        if self.cfg.optim.grad_clip > 0:
            for group in self.clip_groups:
                torch.nn.utils.clip_grad_norm_(group, self.cfg.optim.grad_clip)
        opt.step()
        self.steps_done += 1

    @torch.no_grad()
    def _val_loss(self, s: _Split) -> float:
        total = 0.0
        for i in range(0, len(s.caps), 256):
            ids, own = s.caps[i:i + 256], s.owner[i:i + 256]
            first = int(own[0])
            logits = self.model(s.feats[first:int(own[-1]) + 1], ids[:, :-1], owners=own - first)
            total += float(caption_loss(logits, ids[:, 1:]).sum())
        return total / len(s.caps)

    def captions(self, s: _Split, method: str) -> tuple[list[str], list]:
        """Captions of split `s` by `method` ("greedy" / "beam"), and the greedy attention."""
        self.model.eval()
        max_len, atts = self.cfg.data.max_words, []
        out: list[list[int]] = []
        t = self.cfg.train
        for i in range(0, len(s.feats), 64):
            feats = s.feats[i:i + 64]
            if method == "greedy":
                ids, att = decode.greedy(self.model, feats, max_len, t.follow_slots)
                atts += att
            else:
                ids = decode.beam(self.model, feats, t.beam_width, max_len, t.length_norm,
                                  t.follow_slots)
            out += ids
        return [self.vocab.decode(x) for x in out], atts

    def metrics(self, s: _Split, caps: list[str]) -> dict[str, float | None]:
        labels = [(v, list(c)) for v, c in zip(s.split.ids, s.split.captions)]
        refs = [c for _, c in labels]
        truth = None
        if self.info_json is not None:
            truth = [self.info_json["truth"][v] for v in s.split.ids]
        return {"cider_d": scores.cider_d(caps, refs)[0],
                "bleu4": scores.corpus_bleu(caps, refs)[3],
                "bleu1_course": scores.course_bleu1(dict(zip(s.split.ids, caps)), labels),
                "named_right": None if truth is None else named_right_rate(caps, truth),
                "distinct": float(len(set(caps)))}

    def evaluate(self) -> dict[str, float | None]:
        self.model.eval()
        caps, atts = self.captions(self.val, "greedy")
        self.last_greedy = {"captions": caps, "attention": atts}
        out = {"val_loss": self._val_loss(self.val), **self.metrics(self.val, caps)}
        self.model.train()
        return out

    def final_evaluate(self) -> dict[str, float | None]:
        out: dict[str, Any] = {}
        self.final_captions: dict[tuple[str, str], list[str]] = {}
        for split, tag in ((self.val, ""), (self.other, "other_")):
            if split is None:
                continue
            for method in ("greedy", "beam"):
                caps, atts = self.captions(split, method)
                self.final_captions[(split.split.name, method)] = caps
                if split is self.val and method == "greedy":
                    self.last_greedy = {"captions": caps, "attention": atts}
                m = self.metrics(split, caps)
                out.update({f"{tag}{method}_{k}": v for k, v in m.items()})
                if method == self.cfg.train.decode:
                    out.update({f"{tag}{k}": v for k, v in m.items()})
                _write_predictions(self.run_dir / f"predictions_{split.split.name}_{method}.txt",
                                   split.split.ids, caps)
        out["val_loss"] = self._val_loss(self.val)
        val_labels = [(v, list(c)) for v, c in zip(self.val.split.ids, self.val.split.captions)]
        refs = [c for _, c in val_labels]
        # the search scores every candidate on the training labels: on at most
        # CONSTANT_SEARCH_VIDEOS evenly spaced training videos (it is the slowest part otherwise)
        b, c = scores.best_constants(self.train_refs, CONSTANT_SEARCH_VIDEOS)
        self.constants = {"bleu1": b, "cider": c}
        out["const_bleu1_course"] = scores.course_bleu1({v: b for v, _ in val_labels}, val_labels)
        out["const_cider_d"] = scores.cider_d([c] * len(refs), refs)[0]
        self.model.train()
        return out

    def lr(self) -> float:
        return self.optimizers[MAIN].param_groups[0]["lr"]

    # checkpoints ---------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {"vocab": list(self.vocab.words), "tag_words": self.tag_words,
                "feature_dim": FEATURE_DIM,
                "frame_stride": self.cfg.data.frame_stride}

    def extra_state(self) -> dict[str, torch.Tensor]:
        return {"steps_done": torch.tensor([self.steps_done], dtype=torch.int64)}

    def load_extra_state(self, tensors: dict[str, torch.Tensor]) -> None:
        if "steps_done" in tensors:
            self.steps_done = int(tensors["steps_done"][0])

    def init_from(self, path: str) -> None:
        meta, tensors = ckpt.read_checkpoint(path)
        if meta.get("vocab") != list(self.vocab.words):
            raise DlabError(f"train.init_from {path!r}: its vocabulary differs from this run's")
        try:
            self.model.load_state_dict(ckpt.model_state(tensors))
        except RuntimeError:
            raise DlabError(f"train.init_from {path!r}: its weights do not fit this model "
                            "config") from None

    def info(self) -> dict[str, Any]:
        digits = (self.info_json or {}).get("digits")
        return {"device": self.device.type, "dataset": str(self.root), "vocab": len(self.vocab),
                "train_videos": len(self.train.split), "val_videos": len(self.val.split),
                **({"digits": digits} if digits else {})}

    # artifacts -----------------------------------------------------------------------------
    def first_images(self) -> None:
        return None

    def epoch_end(self, epoch: int, tb: Any) -> None:
        pass

    def figures(self, run_dir: Path, rows: list[dict[str, Any]], tb: Any, epoch: int) -> None:
        from dlab.captioning import figures

        pngs = {"curves": figures.plot_caption_curves(rows, run_dir / "curves.png")}
        caps = self.last_greedy.get("captions") or []
        atts = self.last_greedy.get("attention") or []
        picks = self._example_indices(min(self.cfg.train.examples, len(caps)))
        ids = [self.val.split.ids[i] for i in picks]
        words = [caps[i].split() for i in picks]
        if atts and atts[0] is not None:
            pngs["attention"] = figures.plot_attention(
                [atts[i] for i in picks[:4]], words[:4], ids[:4], self.cfg.data.frame_stride,
                run_dir / "attention.png")
        finals = getattr(self, "final_captions", {})
        frames_path = self.val.split.feature_dir.parent / "frames.npz"
        if picks and frames_path.is_file():
            beam = finals.get((self.val.split.name, "beam"), [""] * len(caps))
            pngs.update(figures.plot_examples(
                frames_path, ids, [list(self.val.split.captions[i]) for i in picks],
                [caps[i] for i in picks], [beam[i] for i in picks], run_dir / "examples",
                slots=self._slot_readings(self.val, picks)))
        for tag, png in pngs.items():
            tb.figure_png(tag, png, epoch)

    @torch.no_grad()
    def _slot_readings(self, s: _Split, picks: list[int]) -> list[str] | None:
        """What the digit slots read of videos `picks` of `s` ("3 horizontal, 5 still"), or
        None without slots."""
        if self.model.slots is None:
            return None
        training = self.model.training
        self.model.eval()
        values = self.model.encode(s.feats[torch.tensor(picks, device=self.device)])[1][2]
        self.model.train(training)
        return [", ".join(f"{d} {m}" for d, m in pairs) for pairs in slot_pairs(values)]

    def _example_indices(self, n: int) -> list[int]:
        """The validation videos the figures show: the first `n`, or on a synthetic set the
        first single- and two-digit videos taken in turn (so both kinds are shown)."""
        if self.info_json is None:
            return list(range(n))
        truth = self.info_json["truth"]
        kinds: dict[int, list[int]] = {}
        for i, vid in enumerate(self.val.split.ids):
            kinds.setdefault(len(truth.get(vid, ())), []).append(i)
        queues = [kinds[k] for k in sorted(kinds)]
        out: list[int] = []
        while len(out) < n and any(queues):
            for q in queues:
                if q and len(out) < n:
                    out.append(q.pop(0))
        return out


class _Schedule:
    """lr factor: over the `xe` cross-entropy steps, cosine from 1 to 0.05 (`cosine`) or 1;
    after them (self-critical steps, unless `scst` is None) `scst`. A callable object, so
    LambdaLR keeps it out of its state dict."""

    def __init__(self, xe: int, cosine: bool, scst: float | None):
        self.xe, self.cosine, self.scst = xe, cosine, scst

    def __call__(self, step: int) -> float:
        if self.scst is not None and step >= self.xe:
            return self.scst
        if not self.cosine:
            return 1.0
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(step / max(self.xe, 1), 1)))


def _write_predictions(path: Path, ids, captions: list[str]) -> None:
    from dlab.io import atomic_write_bytes

    text = "".join(f"{v},{c}\n" for v, c in zip(ids, captions))
    atomic_write_bytes(path, text.encode("utf-8"))
