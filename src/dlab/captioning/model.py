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

Scheduled sampling: at each decoder step after the first, each caption independently feeds
its own previous argmax word instead of the reference word with probability `sample_prob`.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from dlab.captioning.config import CaptionModelConfig


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

    def inputs(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, T, F) features -> (B, T, F or 2F) standardized encoder inputs (before dropout)."""
        return self._with_diff((feats - self.feat_mean) / self.feat_std)

    def _with_diff(self, x: torch.Tensor) -> torch.Tensor:
        """Standardized features -> the encoder inputs of `frame_diff`."""
        if self.frame_diff == "none":
            return x
        k = self.diff_lag
        diff = torch.cat([torch.zeros_like(x[:, :k]), x[:, k:] - x[:, :-k]], 1)
        return diff if self.frame_diff == "only" else torch.cat([x, diff], 2)

    def encode(self, feats: torch.Tensor):
        """(B, T, F) -> (encoder outputs (B, T, H), attention keys or None, decoder state)."""
        return self.encode_tagged(feats)[:3]

    def encode_tagged(self, feats: torch.Tensor):
        """`encode`'s three and the tag logits (B, tags) or None."""
        z = (feats - self.feat_mean) / self.feat_std  # standardized once: encoder and tagger
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
        return enc, keys, state, tags

    @torch.no_grad()
    def set_tag_words(self, word_ids: list[int]) -> None:
        """Tag k is the word of vocabulary id `word_ids[k]` (for the checklist)."""
        self.word_tags.zero_()
        self.word_tags[torch.tensor(word_ids), torch.arange(len(word_ids))] = 1.0

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
        if self.attention:
            scores = self.att_v(torch.tanh(keys + self.att_dec(h)[:, None])).squeeze(2)
            weights = torch.softmax(scores, 1)
            ctx = torch.bmm(weights[:, None], enc).squeeze(1)
            if said is not None:  # the tags not said yet
                k = self.tags
                ctx = torch.cat([ctx[:, :-k], ctx[:, -k:] * (1 - said)], 1)
            x = torch.cat([x, ctx], 1)
        state = self.decoder(x, state)
        h = state if self.cell_kind == "gru" else state[0]
        out = self.drop(h) if ctx is None else torch.cat([self.drop(h), ctx], 1)
        if said is not None:
            state = (state, said) if self.cell_kind == "gru" else (*state, said)
        return self.out(out), state, weights

    def forward(self, feats: torch.Tensor, inputs: torch.Tensor, sample_prob: float = 0.0,
                generator: torch.Generator | None = None, owners: torch.Tensor | None = None,
                with_tags: bool = False):
        """Teacher-forced logits (C, L, V) for decoder inputs (C, L) (`<BOS>` first); caption
        i belongs to video `owners[i]` of `feats` (default: video i), so each video is encoded
        once however many of its captions are decoded. `with_tags`: (logits, the videos' tag
        logits (B, tags) or None)."""
        enc, keys, state, tags = self.encode_tagged(feats)
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
        return (torch.stack(logits, 1), tags) if with_tags else torch.stack(logits, 1)


def state_rows(state, rows: torch.Tensor):
    """A decoder state (a tensor, or a tuple of them) for the captions `rows`."""
    return state[rows] if not isinstance(state, tuple) else tuple(s[rows] for s in state)


def encoded_rows(encoded, rows: torch.Tensor):
    """`S2VT.encode`'s (outputs, keys, decoder state) for the videos `rows` (repeats allowed)."""
    enc, keys, state = encoded
    return enc[rows], None if keys is None else keys[rows], state_rows(state, rows)


def caption_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-caption mean cross-entropy over the non-`<PAD>` targets: (B,)."""
    nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none", ignore_index=0)
    mask = (targets != 0).float()
    return (nll * mask).sum(1) / mask.sum(1).clamp(min=1)
