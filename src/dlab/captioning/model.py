"""The S2VT-style captioner: frame features -> standardization -> optional frame differences
(`frame_diff`: x[t] - x[t - diff_lag], concatenated or instead; the motion in one input) ->
dropout (whole features, the same for every frame) -> linear projection + ReLU -> encoder RNN;
a decoder RNN with additive (Bahdanau) attention over the encoder outputs, started from the
encoder's final state; with `video_context = "mean"` every context also holds the mean over
frames of the projected inputs. Shapes: features (B, T, F), captions (B, L) of ids, logits
(B, L, V).

Semantic tags (`tags` > 0; after the tag-conditioned captioners of Gan et al. 2017, "Semantic
Compositional Networks", and Pan et al. 2017, "Video Captioning with Transferred Semantic
Attributes"): a linear head (dropout first) on the mean and the maximum over frames of the
standardized features gives `tags` logits, trained to say which tag words the video's
references use (the session picks the words and adds the loss); their probabilities join
every attention context (so the decoder's input and its output layer see them at every
step). With `tag_checklist` (after the neural checklist model of Kiddon et al. 2016) the
decoder sees instead the tags it has not said yet: each tag's probability times 0 once its
word was fed to the decoder, 1 before (`word_tags`: vocabulary id -> tag, set by the
session); the decoder state then carries the said-tags vector last (GRU: (h, said); LSTM:
(h, c, said)).

Digit slots (`slots`; after slot-based object-centric readers, with the binding supervised by
the references, as the tags are): one slot per digit the caption parser (`parse`) knows. Per
frame, a linear map of the standardized features (feature dropout first) gives each slot
`slot_cells` numbers; a bidirectional GRU shared by the slots reads each slot's sequence over
the frames, and from its mean and maximum over time a head says whether the digit is in the
video (presence logit) and one says its motion (`parse.MOTIONS` logits); a head on the mean and
the maximum over frames of the standardized features counts the digits. The session trains
the three on the digits and motions the references name, and nothing else trains them (the
decoder reads them without gradients); they also learn from made-up two-digit videos, two
single-digit ones combined by the elementwise maximum of their features (`mixed_videos`),
against reading the other digit's motion. The decoder attends over the slots beside the frames,
with a query from its state and the word just fed: each slot's key is a learnt identity plus a
map of its value; the value is 1 for the digits taken as present (as many as the count says,
the likeliest first; `DigitSlots.present`) and 0 for the others, then that times the motion
probabilities; the slot context is the attention weights (which slot) and the weighted values.
So after saying a digit the decoder can look up that digit's motion: the binding of motions to
digits that frame attention alone did not learn (BENCHMARKS.md).

Scheduled sampling: at each decoder step after the first, each caption independently feeds
its own previous argmax word instead of the reference word with probability `sample_prob`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from dlab.captioning.config import CaptionModelConfig
from dlab.captioning.parse import MOTIONS, NUMBER_WORDS, word_roles


SLOT_ATTENTION = 32  # the slot attention's width


class Heads(NamedTuple):
    """The supervised heads of an encoded batch (each None when off): tag logits (B, tags),
    slot presence logits (B, slots), slot motion logits (B, slots, motions) and digit count
    logits (B, slots + 1)."""

    tags: torch.Tensor | None = None
    presence: torch.Tensor | None = None
    motion: torch.Tensor | None = None
    count: torch.Tensor | None = None


class DigitSlots(nn.Module):
    """Per-digit tracks of standardized features (B, T, F) -> (presence logits (B, S), motion
    logits (B, S, M), count logits (B, S + 1)); see the module doc."""

    def __init__(self, feat_dim: int, cells: int, hidden: int, dropout: float):
        super().__init__()
        self.slots, self.cells, self.hidden = len(NUMBER_WORDS), cells, hidden
        self.drop = nn.Dropout1d(dropout)
        self.maps = nn.Linear(feat_dim, self.slots * cells)
        self.track = nn.GRU(cells, hidden, batch_first=True, bidirectional=True)
        self.presence = nn.Linear(2 * hidden, 1)
        self.motion = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(),
                                    nn.Linear(hidden, len(MOTIONS)))
        self.count = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * feat_dim, self.slots + 1))
        # the digit counts some training video has (`set_counts`): the only counts `present`
        # takes (the count head said 5 or 6 for some videos of a still digit)
        self.register_buffer("count_seen", torch.ones(self.slots + 1, dtype=torch.bool))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, t, _ = z.shape
        maps = self.maps(self.drop(z.transpose(1, 2)).transpose(1, 2))
        seq = maps.view(b, t, self.slots, self.cells).transpose(1, 2).reshape(-1, t, self.cells)
        out = self.track(seq)[0]
        out = out[..., :self.hidden] + out[..., self.hidden:]  # the two directions
        pooled = torch.cat([out.mean(1), out.amax(1)], 1)
        return (self.presence(pooled).view(b, self.slots),
                self.motion(pooled).view(b, self.slots, len(MOTIONS)),
                self.count(torch.cat([z.mean(1), z.amax(1)], 1)))

    @torch.no_grad()
    def set_counts(self, counts: list[int]) -> None:
        """The training videos' digit counts."""
        self.count_seen.zero_()
        self.count_seen[torch.tensor(sorted(set(counts)), dtype=torch.long)] = True

    def present(self, presence: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        """(B, S) 1.0 for the digits taken as present: as many as the count head says (of the
        counts seen in training), those of the largest presence logits. Better than each
        presence logit above 0 alone, which gave the right digits of fewer two-digit videos
        (17 / 23 against 20-23 / 23 in a trial of the slot reader alone)."""
        rank = presence.argsort(1, descending=True).argsort(1)
        n = count.masked_fill(~self.count_seen, float("-inf")).argmax(1, keepdim=True)
        return (rank < n).float()


class S2VT(nn.Module):
    def __init__(self, vocab_size: int, feat_dim: int, cfg: CaptionModelConfig):
        super().__init__()
        h = cfg.hidden
        self.cell_kind, self.attention = cfg.cell, cfg.attention
        self.video_context = cfg.video_context
        self.frame_diff, self.diff_lag = cfg.frame_diff, cfg.diff_lag
        # per-dimension standardization of the features, set from the training set
        # (`set_feature_stats`) and saved with the weights
        self.register_buffer("feat_mean", torch.zeros(feat_dim))
        self.register_buffer("feat_std", torch.ones(feat_dim))
        # dropout drops a feature for all frames of a video at once (Dropout1d over (B, F, T)):
        # a fresh mask per frame would bury the frame-to-frame changes that show the motion
        self.feat_drop = nn.Dropout1d(cfg.dropout)
        inputs = feat_dim * (2 if cfg.frame_diff == "concat" else 1)
        self.proj = nn.Sequential(nn.Linear(inputs, h), nn.ReLU())
        rnn = nn.GRU if cfg.cell == "gru" else nn.LSTM
        cell = nn.GRUCell if cfg.cell == "gru" else nn.LSTMCell
        self.encoder = rnn(h, h, batch_first=True)
        self.embed = nn.Embedding(vocab_size, cfg.embed)
        ctx = (2 * h if cfg.video_context == "mean" else h) if cfg.attention else 0
        self.tags = cfg.tags
        self.checklist = bool(cfg.tags) and cfg.tag_checklist
        if cfg.tags:
            self.tag_head = nn.Sequential(nn.Dropout(cfg.dropout),
                                          nn.Linear(2 * feat_dim, cfg.tags))
            ctx += cfg.tags
            self.register_buffer("word_tags", torch.zeros(vocab_size, cfg.tags))
        self.slots = None
        if cfg.slots:
            self.slots = DigitSlots(feat_dim, cfg.slot_cells, cfg.slot_hidden, cfg.dropout)
            n, values, a = self.slots.slots, 1 + len(MOTIONS), SLOT_ATTENTION
            self.slot_id = nn.Parameter(0.1 * torch.randn(n, a))
            self.slot_key = nn.Linear(values, a)
            self.slot_query = nn.Linear(h, a)
            self.slot_word = nn.Linear(cfg.embed, a, bias=False)
            # the digit and the motion (`parse.MOTIONS` index) each vocabulary word names, -1
            # for none (`set_slot_words`; for decoding that follows the slots, `decode`)
            self.register_buffer("word_digit", torch.full((vocab_size,), -1, dtype=torch.long))
            self.register_buffer("word_motion", torch.full((vocab_size,), -1, dtype=torch.long))
            self.slot_v = nn.Linear(a, 1, bias=False)
            ctx += n + values
        self.decoder = cell(cfg.embed + ctx, h)
        if cfg.attention:
            self.att_enc = nn.Linear(h, h, bias=False)
            self.att_dec = nn.Linear(h, h)
            self.att_v = nn.Linear(h, 1, bias=False)
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(h + ctx, vocab_size)

    @torch.no_grad()
    def set_feature_stats(self, feats: torch.Tensor) -> None:
        """Standardize features by the mean and std over all frames of `feats` (N, T, F)."""
        flat = feats.reshape(-1, feats.shape[-1])
        self.feat_mean.copy_(flat.mean(0))
        self.feat_std.copy_(flat.std(0).clamp(min=1e-3))

    def standardized(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, T, F) features standardized by the training set's statistics."""
        return (feats - self.feat_mean) / self.feat_std

    def inputs(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, T, F) features -> (B, T, F or 2F) standardized encoder inputs (before dropout)."""
        return self._with_diff(self.standardized(feats))

    def _with_diff(self, x: torch.Tensor) -> torch.Tensor:
        """Standardized features -> the encoder inputs of `frame_diff`."""
        if self.frame_diff == "none":
            return x
        k = self.diff_lag
        diff = torch.cat([torch.zeros_like(x[:, :k]), x[:, k:] - x[:, :-k]], 1)
        return diff if self.frame_diff == "only" else torch.cat([x, diff], 2)

    def encode(self, feats: torch.Tensor):
        """(B, T, F) -> (encoder outputs (B, T, H), attention keys or None, decoder state).
        With slots the keys are (frame keys (B, T, H), slot keys (B, S, H), slot values
        (B, S, 1 + motions))."""
        return self.encode_tagged(feats)[:3]

    def encode_tagged(self, feats: torch.Tensor):
        """`encode`'s three and the supervised `Heads`."""
        z = self.standardized(feats)  # once: encoder, tagger and slots
        x = self.feat_drop(self._with_diff(z).transpose(1, 2))
        frames = self.proj(x.transpose(1, 2))
        enc, last = self.encoder(frames)
        state = last[0] if self.cell_kind == "gru" else (last[0][0], last[1][0])
        keys = self.att_enc(enc) if self.attention else None
        tags = None
        if self.tags:
            tags = self.tag_head(torch.cat([z.mean(1), z.amax(1)], 1))  # as SCN's tagger
        # beside every frame, so that every context carries them whole
        extra = [frames.mean(1, keepdim=True)] if self.video_context == "mean" else []
        extra += [torch.sigmoid(tags)[:, None]] if tags is not None else []
        if extra:
            enc = torch.cat([enc] + [e.expand(-1, enc.shape[1], -1) for e in extra], 2)
        if self.checklist:
            said = enc.new_zeros(len(enc), self.tags)
            state = (state, said) if self.cell_kind == "gru" else (*state, said)
        heads = Heads(tags)
        if self.slots is not None:
            presence, motion, count = self.slots(z)
            # what the decoder reads of the slots, without gradients to them: their own
            # supervision alone trains them (the caption loss through them made them worse)
            p = self.slots.present(presence.detach(), count.detach())[..., None]
            values = torch.cat([p, p * torch.softmax(motion.detach(), 2)], 2)
            keys = (keys, self.slot_id + self.slot_key(values), values)
            heads = Heads(tags, presence, motion, count)
        return enc, keys, state, heads

    @torch.no_grad()
    def set_tag_words(self, word_ids: list[int]) -> None:
        """Tag k is the word of vocabulary id `word_ids[k]` (for the checklist)."""
        self.word_tags.zero_()
        self.word_tags[torch.tensor(word_ids), torch.arange(len(word_ids))] = 1.0

    @torch.no_grad()
    def set_slot_words(self, words: list[str]) -> None:
        """The vocabulary's words (in id order), for `word_digit` and `word_motion`."""
        digits, motions = word_roles(words)
        self.word_digit.copy_(torch.tensor(digits))
        self.word_motion.copy_(torch.tensor(motions))

    def step(self, words: torch.Tensor, state, enc: torch.Tensor, keys):
        """One decoder step: (logits (B, V), new state, attention weights (B, T) or None)."""
        said = None
        if self.checklist:
            *rnn, said = state
            state = rnn[0] if self.cell_kind == "gru" else tuple(rnn)
            said = torch.maximum(said, self.word_tags[words])
        h = state if self.cell_kind == "gru" else state[0]
        x = self.embed(words)
        weights = ctx = None
        if self.slots is not None:
            keys, slot_keys, slot_values = keys
        if self.attention:
            scores = self.att_v(torch.tanh(keys + self.att_dec(h)[:, None])).squeeze(2)
            weights = torch.softmax(scores, 1)
            ctx = torch.bmm(weights[:, None], enc).squeeze(1)
            if said is not None:  # the tags not said yet
                k = self.tags
                ctx = torch.cat([ctx[:, :-k], ctx[:, -k:] * (1 - said)], 1)
            if self.slots is not None:  # which digit, and its presence and motion
                query = self.slot_query(h) + self.slot_word(x)  # the word just said, too
                slot_scores = self.slot_v(torch.tanh(slot_keys + query[:, None]))
                slot_weights = torch.softmax(slot_scores.squeeze(2), 1)
                slot_ctx = torch.bmm(slot_weights[:, None], slot_values).squeeze(1)
                ctx = torch.cat([ctx, slot_weights, slot_ctx], 1)
            x = torch.cat([x, ctx], 1)
        state = self.decoder(x, state)
        h = state if self.cell_kind == "gru" else state[0]
        out = self.drop(h) if ctx is None else torch.cat([self.drop(h), ctx], 1)
        if said is not None:
            state = (state, said) if self.cell_kind == "gru" else (*state, said)
        return self.out(out), state, weights

    def forward(self, feats: torch.Tensor, inputs: torch.Tensor, sample_prob: float = 0.0,
                generator: torch.Generator | None = None, owners: torch.Tensor | None = None,
                with_heads: bool = False):
        """Teacher-forced logits (C, L, V) for decoder inputs (C, L) (`<BOS>` first); caption
        i belongs to video `owners[i]` of `feats` (default: video i), so each video is encoded
        once however many of its captions are decoded. `with_heads`: (logits, the videos'
        `Heads`)."""
        enc, keys, state, heads = self.encode_tagged(feats)
        if owners is not None:
            enc, keys, state = encoded_rows((enc, keys, state), owners)
        logits, words = [], inputs[:, 0]
        for t in range(inputs.shape[1]):
            if t > 0:
                words = inputs[:, t]
                if sample_prob > 0:
                    own = logits[-1].detach().argmax(1)
                    pick = torch.rand(len(words), generator=generator,
                                      device=words.device) < sample_prob
                    words = torch.where(pick & (words != 0), own, words)
            out, state, _ = self.step(words, state, enc, keys)
            logits.append(out)
        return (torch.stack(logits, 1), heads) if with_heads else torch.stack(logits, 1)


def state_rows(state, rows: torch.Tensor):
    """A decoder state (a tensor, or a tuple of them) for the captions `rows`."""
    return state[rows] if not isinstance(state, tuple) else tuple(s[rows] for s in state)


def encoded_rows(encoded, rows: torch.Tensor):
    """`S2VT.encode`'s (outputs, keys, decoder state) for the videos `rows` (repeats allowed)."""
    enc, keys, state = encoded
    return enc[rows], None if keys is None else state_rows(keys, rows), state_rows(state, rows)


def read_slots(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What slot values (..., S, 1 + motions) (`S2VT.encode`'s keys[2]) say: which digits are
    taken as present (..., S) bool, and each slot's motion, an index in `parse.MOTIONS`."""
    return values[..., 0] > 0.5, values[..., 1:].argmax(-1)


def slot_pairs(values: torch.Tensor) -> list[list[tuple[int, str]]]:
    """Per video of slot values (N, S, 1 + motions): the (digit, motion name) pairs the slots
    read (`read_slots`), in digit order."""
    present, motion = read_slots(values)
    return [[(d, MOTIONS[int(m[d])]) for d in p.nonzero().flatten().tolist()]
            for p, m in zip(present, motion)]


def slot_loss(heads: Heads, targets: torch.Tensor) -> torch.Tensor:
    """The slot loss summed over the batch, for `parse.slot_targets` rows (B, slots): each
    slot's presence binary cross-entropy, the count's cross-entropy, and for each digit in the
    video its motion cross-entropy."""
    present = targets >= 0
    loss = F.binary_cross_entropy_with_logits(heads.presence, present.float(), reduction="sum")
    loss = loss + F.cross_entropy(heads.count, present.sum(1), reduction="sum")
    return loss + F.cross_entropy(heads.motion.flatten(0, 1), targets.flatten(),
                                  ignore_index=-1, reduction="sum")


def mixed_videos(z: torch.Tensor, targets: torch.Tensor, prob: float,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Made-up two-digit videos for the slot loss (`train.slot_mix`): the single-digit videos
    of a batch, standardized features `z` (B, T, F) and `parse.slot_targets` rows `targets`
    (B, slots), in a random order, taken two by two; a pair of different digits becomes, with
    probability `prob`, one video: the elementwise maximum of the two videos' features, frame
    by frame (the features are activations: where two objects are in view a max-pooled
    network's features are near the larger of the two; the maximum of standardized features is
    the standardized maximum), with both digits and their motions. Returns (features (N, T, F),
    targets (N, slots)), N <= B / 2, possibly 0."""
    single = ((targets >= 0).sum(1) == 1).nonzero().flatten()
    single = single[torch.randperm(len(single), generator=generator, device=z.device)]
    a, b = single[0:len(single) - 1:2], single[1::2]
    keep = ~((targets[a] >= 0) & (targets[b] >= 0)).any(1) & (
        torch.rand(len(a), generator=generator, device=z.device) < prob)
    a, b = a[keep], b[keep]
    return torch.maximum(z[a], z[b]), torch.maximum(targets[a], targets[b])


def caption_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-caption mean cross-entropy over the non-`<PAD>` targets: (B,)."""
    nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none", ignore_index=0)
    mask = (targets != 0).float()
    return (nll * mask).sum(1) / mask.sum(1).clamp(min=1)
