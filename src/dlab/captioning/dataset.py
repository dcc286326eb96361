"""The videos a caption run trains on: the course-layout folder of `data.root`, or the
synthetic set of the `data.synth_*` keys, generated once into the cache dir
(`<cache>/captioning/synth-<key>`, deterministic by its seed; concurrent first uses each build
a private copy and the first rename wins). Torch-free.
"""

from __future__ import annotations

from pathlib import Path

from dlab.captioning.config import CaptionDataConfig
from dlab.captioning.synth import INFO, SynthSpec, generate
from dlab.config import digest
from dlab.errors import DlabError
from dlab.paths import cache_root


def synth_spec(d: CaptionDataConfig) -> SynthSpec:
    return SynthSpec(train=d.synth_train, test=d.synth_test, compositional=d.synth_compositional,
                     seed=d.synth_seed, two_digit_fraction=d.synth_two_digit_fraction,
                     digit_pool=d.synth_digit_pool, feature_map=d.synth_feature_map)


def _has_mnist(data_dir: str | None) -> bool:
    from dlab.data import load_dataset

    try:
        load_dataset("mnist", "train", data_dir, download=False)
    except DlabError:
        return False
    return True


def dataset_root(d: CaptionDataConfig, data_dir: str | None, progress=None) -> Path:
    """The folder of the run's videos (generating the synthetic set when it is missing)."""
    if d.root:
        root = Path(d.root)
        if not (root / "training_label.json").is_file():
            raise DlabError(f"data.root {d.root!r}: no training_label.json there; expected a "
                            "folder in the course layout")
        return root
    spec = synth_spec(d)
    # the key names the digit source too: without MNIST the same spec gives a glyph set
    source = "mnist" if _has_mnist(data_dir) else "glyphs"
    root = cache_root() / "captioning" / f"synth-{source}-{digest(spec.__dict__)}"
    if (root / INFO).is_file():
        return root
    try:
        generate(spec, root, data_dir, progress)
    except DlabError:
        if not (root / INFO).is_file():  # another process may have finished first
            raise
    return root
