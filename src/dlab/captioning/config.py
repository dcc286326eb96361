"""The config tree of task "caption" ([data] [model] [optim] [train]), resolved and validated.

Torch-free: the planner, reports and `dlab caption` read it without torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from dlab.config import config_key, from_dict
from dlab.errors import DlabError


@dataclass(frozen=True)
class CaptionDataConfig:
    """Where the videos come from and how captions become ids."""

    root: str = ""  # a folder in the course layout; "" = the synthetic set below (generated
    # into the cache dir, `<cache>/captioning/synth-<key>`, on first use)
    # 3000 + 80 + 80 videos: 8.3 GB of float64 features, about 11 minutes to generate once;
    # 1000 videos (3.0 GB) name fewer two-digit videos right (BENCHMARKS.md)
    synth_train: int = 3000
    synth_test: int = 80
    synth_compositional: int = 80
    synth_seed: int = 1
    synth_two_digit_fraction: float = 0.3
    synth_digit_pool: int = 10
    synth_feature_map: int = 2  # 1: random filters only; 2: and class evidence (`synth` doc)
    min_count: int = 1  # vocabulary: words seen fewer times in the training captions -> <UNK>
    max_words: int = 20  # captions are cut to this many words for training
    frame_stride: int = 4  # use every n-th of the 80 frames
    val_split: str = "testing"  # the split the primary metric is measured on


@dataclass(frozen=True)
class CaptionModelConfig:
    """The S2VT-style encoder-decoder."""

    cell: str = "gru"  # "gru" or "lstm", encoder and decoder
    hidden: int = 256
    embed: int = 128
    dropout: float = 0.3  # on the frame features before the projection, and on decoder outputs
    attention: bool = True  # additive attention over the encoder outputs; false: the decoder
    # sees only the encoder's final state
    # motion given directly: the standardized feature[t] - feature[t - diff_lag] (frames after
    # the stride; zero for the first diff_lag frames) "concat"enated to the features, "only"
    # the differences, or "none"
    frame_diff: str = "concat"
    diff_lag: int = 1
    # "mean": every attention context also holds the mean over frames of the projected inputs
    # (the whole video at once, beside the attended frames); "none": the context alone
    video_context: str = "none"
    # semantic tags: a head on the frame-pooled features predicts which of (at most) `tags`
    # tag words the video's references use, and its probabilities join every attention context
    # (see `model`). The tag words: the training captions' words used by the most videos among
    # those used by at most `tag_max_share` of them (so not "the", "is"). 0 = no tags.
    tags: int = 64
    tag_max_share: float = 0.5
    tag_checklist: bool = True  # the decoder sees only the tags it has not said yet
    # digit slots: per digit a track over the frames says whether it is in the video and how
    # it moves (trained on the digits and motions the references name, as `parse` reads
    # them), and the decoder attends over the slots (see `model`). Needs captions that name
    # digits (the synthetic set's); false for other captions
    slots: bool = True
    slot_cells: int = 16  # numbers per slot and frame
    slot_hidden: int = 64  # the slot tracks' GRU


@dataclass(frozen=True)
class CaptionOptimConfig:
    lr: float = 2e-3  # Adam
    weight_decay: float = 0.0
    grad_clip: float = 5.0  # total gradient norm (0 = off)
    schedule: str = "cosine"  # "constant" or "cosine" (to 5% of lr over the run)


@dataclass(frozen=True)
class CaptionTrainConfig:
    epochs: int = 18  # all of them: 12 of cross-entropy, then scst_epochs self-critical
    batch_size: int = 16  # videos per step (each with captions_per_video references)
    seed: int = 1
    init_from: str = ""
    captions_per_video: int = 4  # random references per video and epoch
    # scheduled sampling: the probability of feeding the model's own previous word (argmax)
    # instead of the reference word; "linear" rises from 0 to ss_max over the epochs,
    # "inverse_sigmoid" is ss_max * (1 - k / (k + exp(epoch / k))), "none" is teacher forcing
    ss_schedule: str = "linear"
    ss_max: float = 0.25
    ss_k: float = 3.0
    decode: str = "beam"  # the decoder of the final metrics ("greedy" or "beam"); both reported
    beam_width: int = 3
    length_norm: float = 0.7  # beam: rank hypotheses by log p / length ** length_norm
    # with model.slots: greedy and beam search name exactly the digits the slots find, each
    # with its slot's motion (`decode.SlotRules`); the decoder picks the words around them
    follow_slots: bool = True
    tag_weight: float = 1.0  # the tag loss (binary cross-entropy, summed over tags) beside the
    # caption loss, with model.tags > 0
    slot_weight: float = 1.0  # the slot loss (presence binary cross-entropy summed over the
    # slots, plus the motion cross-entropy of each digit in the video), with model.slots
    # with model.slots: each step also pairs the batch's single-digit videos (of different
    # digits), each pair with probability slot_mix, into a made-up two-digit video for the slot
    # loss alone: the elementwise maximum of their features, the union of their digits and
    # motions (`model.mixed_videos`). The slots then learn to read each digit's own motion
    # where another digit moves beside it (the slot reader alone read 100-114 of 155 held-out
    # two-digit training videos right, against 80-96 without, seeds 0-2; the captioner named
    # 18-20 of 23 two-digit test videos right, against 12-17; BENCHMARKS.md). 0 = off
    slot_mix: float = 0.5
    examples: int = 6  # example videos in the figures
    # temporal augmentation of the training videos: every frame_stride-th frame from a random
    # offset each time a video is drawn (rather than from frame 0; all 80 frames stay in
    # memory), and reversal in time with probability reverse_prob (only where a reversed
    # video's captions stay true, as for the synthetic motions)
    temporal_jitter: bool = True
    reverse_prob: float = 0.0
    # self-critical sequence training (Rennie et al. 2017, with the mean reward of the video's
    # other samples as the baseline, as in Luo 2020): the last scst_epochs of the epochs sample
    # scst_samples captions per video and follow the gradient of their CIDEr-D (against the
    # video's training references) instead of the cross-entropy, at the constant learning
    # rate scst_lr (the cross-entropy epochs before keep optim.schedule over their own length).
    # 0 = cross-entropy only; with train.init_from and scst_epochs = epochs, only self-critical
    scst_epochs: int = 6
    scst_samples: int = 10
    scst_lr: float = 5e-4

    @property
    def xe_epochs(self) -> int:
        """The cross-entropy epochs: those before the self-critical ones."""
        return self.epochs - self.scst_epochs


@dataclass(frozen=True)
class CaptionConfig:
    data: CaptionDataConfig = field(default_factory=CaptionDataConfig)
    model: CaptionModelConfig = field(default_factory=CaptionModelConfig)
    optim: CaptionOptimConfig = field(default_factory=CaptionOptimConfig)
    train: CaptionTrainConfig = field(default_factory=CaptionTrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        # "defaults N": the defaults changed (2: tags, checklist, temporal jitter, 12 epochs;
        # 3: 6 self-critical epochs after those 12, 3000 training videos; 4: digit slots; 5:
        # made-up two-digit videos for the slots), so a run of older defaults is not found
        # again as one of the new
        return config_key(self, "caption (defaults 5)")

    def continues(self, shorter: "CaptionConfig") -> bool:
        """Never: the cosine and scheduled-sampling schedules depend on the run's length."""
        return False


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise DlabError(message)


def resolve(data: dict[str, Any] | None = None) -> CaptionConfig:
    """A validated caption config from plain data (one-line error naming the bad key)."""
    data = dict(data or {})
    data.pop("task", None)
    cfg = from_dict(CaptionConfig, data)
    d, m, o, t = cfg.data, cfg.model, cfg.optim, cfg.train
    for key in ("synth_train", "synth_test", "synth_compositional", "max_words", "frame_stride"):
        _check(getattr(d, key) >= 1, f"data.{key} = {getattr(d, key)}; expected >= 1")
    _check(d.frame_stride <= 80, f"data.frame_stride = {d.frame_stride}; expected 1..80")
    _check(d.min_count >= 1, f"data.min_count = {d.min_count}; expected >= 1")
    _check(0 <= d.synth_two_digit_fraction <= 1,
           f"data.synth_two_digit_fraction = {d.synth_two_digit_fraction}; expected 0..1")
    _check(d.synth_feature_map in (1, 2),
           f"data.synth_feature_map = {d.synth_feature_map}; expected 1 or 2")
    _check(d.val_split in ("testing", "compositional"),
           f"data.val_split = {d.val_split!r}; expected 'testing' or 'compositional'")
    _check(m.cell in ("gru", "lstm"), f"model.cell = {m.cell!r}; expected 'gru' or 'lstm'")
    _check(m.video_context in ("none", "mean"),
           f"model.video_context = {m.video_context!r}; expected 'none' or 'mean'")
    _check(m.video_context == "none" or m.attention,
           "model.video_context = 'mean' needs model.attention = true")
    _check(m.frame_diff in ("none", "concat", "only"),
           f"model.frame_diff = {m.frame_diff!r}; expected 'none', 'concat' or 'only'")
    _check(m.frame_diff == "none" or 1 <= m.diff_lag < len(range(0, 80, d.frame_stride)),
           f"model.diff_lag = {m.diff_lag}; expected 1..{len(range(0, 80, d.frame_stride)) - 1} (frames after "
           f"data.frame_stride = {d.frame_stride})")
    _check(m.tags >= 0, f"model.tags = {m.tags}; expected >= 0 (0 = no tags)")
    _check(m.tags == 0 or m.attention, "model.tags > 0 needs model.attention = true")
    _check(not m.slots or m.attention, "model.slots = true needs model.attention = true")
    _check(m.slot_cells >= 1 and m.slot_hidden >= 1,
           "model.slot_cells and model.slot_hidden must be >= 1")
    _check(t.slot_weight >= 0, f"train.slot_weight = {t.slot_weight}; expected >= 0")
    _check(0 <= t.slot_mix <= 1, f"train.slot_mix = {t.slot_mix}; expected 0 to 1")
    _check(0 < m.tag_max_share <= 1, f"model.tag_max_share = {m.tag_max_share}; expected 0 < "
           "share <= 1")
    _check(0 <= t.reverse_prob <= 1, f"train.reverse_prob = {t.reverse_prob}; expected 0..1")
    _check(0 <= t.scst_epochs <= t.epochs,
           f"train.scst_epochs = {t.scst_epochs}; expected 0..train.epochs ({t.epochs}): the "
           "self-critical epochs are the last of the epochs (set train.scst_epochs too, 0 for "
           "cross-entropy only)")
    _check(t.scst_samples >= 2, f"train.scst_samples = {t.scst_samples}; expected >= 2 (the "
           "baseline is the other samples' mean reward)")
    _check(t.scst_lr > 0, f"train.scst_lr = {t.scst_lr}; expected > 0")
    _check(t.tag_weight >= 0, f"train.tag_weight = {t.tag_weight}; expected >= 0")
    _check(m.hidden >= 1 and m.embed >= 1, "model.hidden and model.embed must be >= 1")
    _check(0 <= m.dropout < 1, f"model.dropout = {m.dropout}; expected 0 <= p < 1")
    _check(o.lr > 0, f"optim.lr = {o.lr}; expected > 0")
    _check(o.schedule in ("constant", "cosine"),
           f"optim.schedule = {o.schedule!r}; expected 'constant' or 'cosine'")
    _check(t.epochs >= 1 and t.batch_size >= 1 and t.captions_per_video >= 1,
           "train.epochs, train.batch_size and train.captions_per_video must be >= 1")
    _check(t.ss_schedule in ("none", "linear", "inverse_sigmoid"),
           f"train.ss_schedule = {t.ss_schedule!r}; expected 'none', 'linear' or "
           "'inverse_sigmoid'")
    _check(0 <= t.ss_max <= 1, f"train.ss_max = {t.ss_max}; expected 0..1")
    _check(t.ss_k > 0, f"train.ss_k = {t.ss_k}; expected > 0")
    _check(t.decode in ("greedy", "beam"), f"train.decode = {t.decode!r}; expected 'greedy' or "
           "'beam'")
    _check(t.beam_width >= 1, f"train.beam_width = {t.beam_width}; expected >= 1")
    _check(t.length_norm >= 0, f"train.length_norm = {t.length_norm}; expected >= 0")
    return cfg


def sampling_probability(t: CaptionTrainConfig, epoch: int) -> float:
    """Scheduled sampling's probability in (0-based) `epoch` of the `t.xe_epochs`
    cross-entropy epochs."""
    import math

    if t.ss_schedule == "none":
        return 0.0
    if t.ss_schedule == "linear":
        return t.ss_max * epoch / max(t.xe_epochs - 1, 1)
    return t.ss_max * (1 - t.ss_k / (t.ss_k + math.exp(epoch / t.ss_k)))
