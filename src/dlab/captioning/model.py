"""The S2VT-style captioner: frame features -> standardization -> optional frame differences
(`frame_diff`: x[t] - x[t - diff_lag], concatenated or instead; the motion in one input) -> dropout (whole features, the
same for every frame) -> linear projection + ReLU -> encoder RNN;
a decoder RNN with additive (Bahdanau) attention over the encoder outputs, started from the
encoder's final state; with `video_context = "mean"` every context also holds the mean over
frames of the projected inputs. Shapes: features (B, T, F), captions (B, L) of ids, logits
(B, L, V).

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
        x = (feats - self.feat_mean) / self.feat_std
        if self.frame_diff == "none":
            return x
        k = self.diff_lag
        diff = torch.cat([torch.zeros_like(x[:, :k]), x[:, k:] - x[:, :-k]], 1)
        return diff if self.frame_diff == "only" else torch.cat([x, diff], 2)

    def encode(self, feats: torch.Tensor):
        """(B, T, F) -> (encoder outputs (B, T, H), attention keys or None, decoder state)."""
        x = self.feat_drop(self.inputs(feats).transpose(1, 2))
        frames = self.proj(x.transpose(1, 2))
        enc, last = self.encoder(frames)
        state = last[0] if self.cell_kind == "gru" else (last[0][0], last[1][0])
        keys = self.att_enc(enc) if self.attention else None
        if self.video_context == "mean":  # beside every frame, so the context carries it whole
            enc = torch.cat([enc, frames.mean(1, keepdim=True).expand_as(frames)], 2)
        return enc, keys, state

    def step(self, words: torch.Tensor, state, enc: torch.Tensor, keys):
        """One decoder step: (logits (B, V), new state, attention weights (B, T) or None)."""
        h = state if self.cell_kind == "gru" else state[0]
        x = self.embed(words)
        weights = ctx = None
        if self.attention:
            scores = self.att_v(torch.tanh(keys + self.att_dec(h)[:, None])).squeeze(2)
            weights = torch.softmax(scores, 1)
            ctx = torch.bmm(weights[:, None], enc).squeeze(1)
            x = torch.cat([x, ctx], 1)
        state = self.decoder(x, state)
        h = state if self.cell_kind == "gru" else state[0]
        out = self.drop(h) if ctx is None else torch.cat([self.drop(h), ctx], 1)
        return self.out(out), state, weights

    def forward(self, feats: torch.Tensor, inputs: torch.Tensor, sample_prob: float = 0.0,
                generator: torch.Generator | None = None, owners: torch.Tensor | None = None
                ) -> torch.Tensor:
        """Teacher-forced logits (C, L, V) for decoder inputs (C, L) (`<BOS>` first); caption
        i belongs to video `owners[i]` of `feats` (default: video i), so each video is encoded
        once however many of its captions are decoded."""
        enc, keys, state = self.encode(feats)
        if owners is not None:
            enc = enc[owners]
            keys = None if keys is None else keys[owners]
            state = state[owners] if not isinstance(state, tuple) else tuple(
                x[owners] for x in state)
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
        return torch.stack(logits, 1)


def caption_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-caption mean cross-entropy over the non-`<PAD>` targets: (B,)."""
    nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none", ignore_index=0)
    mask = (targets != 0).float()
    return (nll * mask).sum(1) / mask.sum(1).clamp(min=1)
