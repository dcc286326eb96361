"""Captions from a trained checkpoint for a folder of course-format features, in id.txt order."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from dlab.captioning import decode as decoding
from dlab.captioning.config import resolve
from dlab.captioning.course import FEATURE_DIM, load_features, read_id_list
from dlab.captioning.model import S2VT
from dlab.captioning.text import Vocabulary
from dlab.errors import DlabError
from dlab.io import atomic_write_bytes
from dlab.torch_engine import checkpoint as ckpt
from dlab.torch_engine.evaluate import resolve_device


def load_captioner(path: str | Path, device: torch.device):
    """(model in eval mode, config, vocabulary) of a caption checkpoint."""
    meta, tensors = ckpt.read_checkpoint(path)
    if meta.get("task") != "caption":
        raise DlabError(f"checkpoint {str(path)!r} is of task {meta.get('task')!r}; expected "
                        "'caption'")
    config = meta["config"]
    if "slots" not in config.get("model", {}):  # written before digit slots existed: none
        config = {**config, "model": {**config.get("model", {}), "slots": False}}
    cfg = resolve(config)
    vocab = Vocabulary(tuple(meta["vocab"]))
    # the tag words found (at most model.tags)
    tags = len(meta.get("tag_words", ())) if cfg.model.tags else 0
    model = S2VT(len(vocab), FEATURE_DIM, dataclasses.replace(cfg.model, tags=tags)).to(device)
    try:
        model.load_state_dict(ckpt.model_state(tensors))
    except RuntimeError:
        raise DlabError(f"checkpoint {str(path)!r}: its weights do not fit the captioner its "
                        "config describes in this version of dlab") from None
    return model.eval(), cfg, vocab


def predict_file(checkpoint: str | Path, feature_dir: Path, ids_path: Path, out: Path,
                 decode: str | None = None, device: str = "auto") -> int:
    """Write `<id>,<caption>` per id of `ids_path` into `out`; returns the number of lines."""
    dev = resolve_device(device)
    model, cfg, vocab = load_captioner(checkpoint, dev)
    ids = read_id_list(ids_path)
    if not ids:
        raise DlabError(f"id list {str(ids_path)!r} is empty")
    method = decode or cfg.train.decode
    lines = []
    for i in range(0, len(ids), 64):
        chunk = ids[i:i + 64]
        feats = torch.from_numpy(load_features(feature_dir, chunk, cfg.data.frame_stride)).to(dev)
        t = cfg.train
        if method == "greedy":
            seqs, _ = decoding.greedy(model, feats, cfg.data.max_words, t.follow_slots)
        else:
            seqs = decoding.beam(model, feats, t.beam_width, cfg.data.max_words,
                                 t.length_norm, t.follow_slots)
        lines += [f"{v},{vocab.decode(s)}\n" for v, s in zip(chunk, seqs)]
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, "".join(lines).encode("utf-8"))
    return len(lines)
