"""The course's data layout (Clemson / MLDS HW2, the MSVD subset), read exactly.

    <root>/training_label.json        [{"caption": [str, ...], "id": "<video>.avi"}, ...]
    <root>/testing_label.json         the same, for the test videos
    <root>/training_data/feat/<id>.npy  float64, shape (80, 4096): one feature row per frame
    <root>/testing_data/feat/<id>.npy
    <root>/testing_data/id.txt        the test ids, one per line (the order of predictions)

A split named S is `<root>/S_label.json` + `<root>/S_data/feat/` (the synthetic set adds a
third split, "compositional"). Every defect is a one-line `DlabError` naming the file: malformed
JSON, a wrong entry, a missing feature file, a feature array of another shape or dtype.
Numpy only; must not import torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlab.errors import DlabError

FRAMES, FEATURE_DIM = 80, 4096


@dataclass(frozen=True)
class CaptionSplit:
    """One split's videos: ids, their reference captions, and where their features are."""

    name: str
    ids: tuple[str, ...]
    captions: tuple[tuple[str, ...], ...]  # per video, the reference captions
    feature_dir: Path

    def __len__(self) -> int:
        return len(self.ids)

    def references(self) -> dict[str, list[str]]:
        return {vid: list(caps) for vid, caps in zip(self.ids, self.captions)}


def read_labels(path: str | Path, unique: bool = True) -> list[tuple[str, list[str]]]:
    """The (id, captions) entries of a course label file, in file order; a repeated id is an
    error unless `unique` is False (the course scorer accepts repeats and scores each)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DlabError(f"label file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DlabError(f"label file {str(path)!r} is not valid JSON ({exc})") from None
    if not isinstance(data, list):
        raise DlabError(f"label file {str(path)!r}: expected a JSON list of "
                        '{"caption": [...], "id": "..."} entries')
    out, seen = [], set()
    for i, item in enumerate(data):
        ok = (isinstance(item, dict) and isinstance(item.get("id"), str)
              and isinstance(item.get("caption"), list)
              and all(isinstance(c, str) for c in item["caption"]))
        if not ok:
            raise DlabError(f"label file {str(path)!r}: entry {i} is not "
                            '{"caption": [str, ...], "id": str}')
        if unique and item["id"] in seen:
            raise DlabError(f"label file {str(path)!r}: id {item['id']!r} appears twice")
        seen.add(item["id"])
        out.append((item["id"], list(item["caption"])))
    return out


def read_id_list(path: str | Path) -> list[str]:
    """The ids of `id.txt`, one per non-empty line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DlabError(f"id list {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DlabError(f"id list {str(path)!r} cannot be read ({exc})") from None
    return [line.strip() for line in lines if line.strip()]


def feature_path(feature_dir: str | Path, vid: str) -> Path:
    return Path(feature_dir) / f"{vid}.npy"


def load_feature(feature_dir: str | Path, vid: str) -> np.ndarray:
    """One video's (80, 4096) float64 features, checked."""
    path = feature_path(feature_dir, vid)
    if not path.is_file():
        raise DlabError(f"video {vid!r} has no feature file {str(path)!r}")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DlabError(f"feature file {str(path)!r} cannot be read as .npy ({exc})") from None
    if arr.shape != (FRAMES, FEATURE_DIM) or arr.dtype != np.float64:
        raise DlabError(f"feature file {str(path)!r} holds {arr.dtype} {arr.shape}; expected "
                        f"float64 ({FRAMES}, {FEATURE_DIM})")
    return arr


def load_features(feature_dir: str | Path, ids: list[str] | tuple[str, ...],
                  frame_stride: int = 1) -> np.ndarray:
    """The features of `ids` as float32 (N, 80 // frame_stride, 4096), every `frame_stride`-th
    frame from the first."""
    frames = len(range(0, FRAMES, frame_stride))
    out = np.empty((len(ids), frames, FEATURE_DIM), np.float32)
    for i, vid in enumerate(ids):
        out[i] = load_feature(feature_dir, vid)[::frame_stride]
    return out


def read_split(root: str | Path, name: str) -> CaptionSplit:
    """Split `name` of the course layout under `root` (labels read, feature files checked to
    exist; their contents are checked when loaded)."""
    root = Path(root)
    entries = read_labels(root / f"{name}_label.json")
    feature_dir = root / f"{name}_data" / "feat"
    for vid, caps in entries:
        if not caps:
            raise DlabError(f"label file {str(root / f'{name}_label.json')!r}: video {vid!r} "
                            "has no captions")
        if not feature_path(feature_dir, vid).is_file():
            raise DlabError(f"video {vid!r} has no feature file "
                            f"{str(feature_path(feature_dir, vid))!r}")
    return CaptionSplit(name, tuple(v for v, _ in entries), tuple(tuple(c) for _, c in entries),
                        feature_dir)
