"""Greedy and beam-search decoding of an `S2VT` captioner (eval mode, no gradients), and
sampling with gradients (for self-critical training, `sample`).

Beam search keeps `width` hypotheses per video; a hypothesis ends at `<EOS>` and is ranked by
its total log-probability / (its length in tokens, `<EOS>` included) ** `length_norm`
(0 = no normalization, 1 = the mean). Width 1 is greedy decoding.

With `follow_slots` (a model with digit slots) greedy and beam search keep to what the slots
say (`SlotRules`; constrained decoding, after Anderson et al. 2017 and Hokamp & Liu 2017):
the caption names exactly the digits the slots take as present, each once, and the first
motion word after each digit is one of that digit's slot motion's words; it ends only then.
So the digits and motions a caption names are the slots' (as `parse` reads captions), and
the decoder still picks the phrasing.
"""

from __future__ import annotations

import torch

from dlab.captioning.model import encoded_rows, read_slots, state_rows

PAD, BOS, EOS = 0, 1, 2


class SlotRules:
    """Which words each caption may say next so that it names the digits its video's slots take
    as present, each once and with its slot's motion (see the module doc). One row per caption
    being decoded; `slot_values` are the rows' slot values (`S2VT.encode`'s keys[2])."""

    def __init__(self, model, slot_values: torch.Tensor):
        self.digit_of, self.motion_of = model.word_digit, model.word_motion
        self.present, self.motion = read_slots(slot_values)  # (N, slots) each
        self.said = torch.zeros_like(self.present)
        # the digit said last whose motion word has not come yet, -1 for none
        self.pending = torch.full((len(slot_values),), -1, dtype=torch.long,
                                  device=slot_values.device)

    def allowed(self) -> torch.Tensor:
        """(N, V) True for the words each caption may say now."""
        waiting = self.pending >= 0
        open_digits = self.present & ~self.said
        digit_ok = open_digits[:, self.digit_of.clamp(min=0)] & ~waiting[:, None]
        motion = self.motion.gather(1, self.pending.clamp(min=0)[:, None])
        motion_ok = ~waiting[:, None] | (self.motion_of[None] == motion)
        ok = torch.where(self.digit_of[None] >= 0, digit_ok,
                         torch.where(self.motion_of[None] >= 0, motion_ok, True))
        ok[:, EOS] = ~open_digits.any(1) & ~waiting
        ok[~ok.any(1)] = True  # nothing fits (a vocabulary without the words): no rule
        return ok

    def said_words(self, words: torch.Tensor) -> None:
        """Record the words (N,) each caption just said."""
        digit = self.digit_of[words]
        self.pending = torch.where(self.motion_of[words] >= 0, -1, self.pending)
        named = digit >= 0
        self.said[named, digit[named]] = True
        self.pending = torch.where(named, digit, self.pending)

    def select(self, rows: torch.Tensor) -> None:
        """Keep the captions `rows` (beam search's survivors, repeats allowed)."""
        self.present, self.motion = self.present[rows], self.motion[rows]
        self.said, self.pending = self.said[rows], self.pending[rows]


def slot_rules(model, keys, follow_slots: bool) -> SlotRules | None:
    """The rules for `keys` of `model.encode`, or None (not asked, or a model without slots)."""
    if not follow_slots or getattr(model, "slots", None) is None:
        return None
    return SlotRules(model, keys[2])


@torch.no_grad()
def greedy(model, feats: torch.Tensor, max_len: int, follow_slots: bool = False
           ) -> tuple[list[list[int]], list]:
    """Ids per video (no `<BOS>`, up to and without `<EOS>`, at most `max_len`) and the attention weights per
    video ((words, T) arrays, or None without attention)."""
    enc, keys, state = model.encode(feats)
    rules = slot_rules(model, keys, follow_slots)
    words = torch.full((len(feats),), BOS, dtype=torch.long, device=feats.device)
    done = torch.zeros(len(feats), dtype=torch.bool, device=feats.device)
    ids, atts = [], []
    for _ in range(max_len + 1):
        logits, state, weights = model.step(words, state, enc, keys)
        if rules is not None:
            logits = logits.masked_fill(~rules.allowed(), float("-inf"))
        words = logits.argmax(1)
        if rules is not None:
            rules.said_words(words)
        ids.append(words)
        atts.append(weights)
        done |= words == EOS
        if bool(done.all()):
            break
    ids_t = torch.stack(ids, 1).tolist()
    out, att_out = [], []
    for i, seq in enumerate(ids_t):
        n = min(seq.index(EOS) if EOS in seq else len(seq), max_len)
        out.append(seq[:n])
        att_out.append(None if atts[0] is None else
                       torch.stack([a[i] for a in atts[:n + 1]]).cpu().numpy())
    return out, att_out


def sample(model, encoded, k: int, max_len: int, generator: torch.Generator | None = None
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """`k` captions per video sampled from the model's word distributions, for the outputs of
    `model.encode` (B videos): (ids (B * k, steps), `<EOS>` ends a caption, 0 after it; the
    sum of each caption's word log-probabilities, `<EOS>` included, with gradients). Sample
    `i * k + j` is video i's j-th; `<PAD>` and `<BOS>` are never sampled (the
    distribution is over the other words). After `max_len` words a caption ends (`<EOS>`, its
    log-probability included)."""
    rows = torch.arange(len(encoded[0]), device=encoded[0].device).repeat_interleave(k)
    enc, keys, state = encoded_rows(encoded, rows)
    words = torch.full((len(rows),), BOS, dtype=torch.long, device=enc.device)
    alive = torch.ones(len(rows), dtype=torch.bool, device=enc.device)
    ids, logps = [], []
    never = torch.tensor([PAD, BOS], device=enc.device)  # not words: never sampled
    for t in range(max_len + 1):
        logits, state, _ = model.step(words, state, enc, keys)
        logits = logits.float().index_fill(1, never, float("-inf"))
        logp = torch.log_softmax(logits, 1)
        if t == max_len:  # the caption is full: it ends here
            words = torch.full_like(words, EOS)
        else:
            words = torch.multinomial(logp.detach().exp(), 1, generator=generator).squeeze(1)
        logps.append(logp.gather(1, words[:, None]).squeeze(1) * alive)
        ids.append(torch.where(alive, words, 0))
        alive = alive & (words != EOS)
        if not bool(alive.any()):
            break
    return torch.stack(ids, 1), torch.stack(logps, 1).sum(1)


@torch.no_grad()
def beam_one(model, feats: torch.Tensor, width: int, max_len: int, length_norm: float,
             follow_slots: bool = False) -> list[int]:
    """The best hypothesis for one video's features (1, T, F)."""
    enc, keys, state = encoded_rows(model.encode(feats),
                                    torch.zeros(width, dtype=torch.long, device=feats.device))
    rules = slot_rules(model, keys, follow_slots)
    words = torch.full((width,), BOS, dtype=torch.long, device=feats.device)
    scores = torch.full((width,), float("-inf"), device=feats.device)
    scores[0] = 0.0
    seqs: list[list[int]] = [[] for _ in range(width)]
    finished: list[tuple[float, list[int]]] = []
    for t in range(max_len + 1):
        logits, state, _ = model.step(words, state, enc, keys)
        total = scores[:, None] + torch.log_softmax(logits.float(), 1)
        if rules is not None:
            total = total.masked_fill(~rules.allowed(), float("-inf"))
        top, flat = total.view(-1).topk(min(2 * width, total.numel()))
        vocab = logits.shape[1]
        keep_beam, keep_word, keep_score = [], [], []
        # candidates in score order until `width` live ones: an <EOS> ranked among them ends
        # a hypothesis (so width 1 is exactly greedy decoding)
        for value, index in zip(top.tolist(), flat.tolist()):
            beam, word = divmod(index, vocab)
            if value == float("-inf") or len(keep_beam) == width:
                break
            if word == EOS or t == max_len:
                finished.append((value / (len(seqs[beam]) + 1) ** length_norm, seqs[beam]))
            else:
                keep_beam.append(beam), keep_word.append(word), keep_score.append(value)
        if len(finished) >= width or not keep_beam:
            break
        while len(keep_beam) < width:  # pad with dead beams
            keep_beam.append(keep_beam[0]), keep_word.append(keep_word[0])
            keep_score.append(float("-inf"))
        index = torch.tensor(keep_beam, device=feats.device)
        state = state_rows(state, index)
        seqs = [seqs[b] + [w] for b, w in zip(keep_beam, keep_word)]
        words = torch.tensor(keep_word, device=feats.device)
        if rules is not None:
            rules.select(index)
            rules.said_words(words)
        scores = torch.tensor(keep_score, device=feats.device)
    return max(finished, key=lambda f: f[0])[1] if finished else seqs[0]


def beam(model, feats: torch.Tensor, width: int, max_len: int, length_norm: float,
         follow_slots: bool = False) -> list[list[int]]:
    """Beam-search ids per video of `feats` (B, T, F)."""
    return [beam_one(model, feats[i:i + 1], width, max_len, length_norm, follow_slots)
            for i in range(len(feats))]
