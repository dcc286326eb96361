"""The dataset registry: one `DatasetSpec` entry per dataset, pure data, no I/O.

An entry names its storage format (`kind`, a key of `dlab.data.formats.FORMATS`), its classes,
image shape, normalization statistics, the files or archives that make it up with their
checksums, and the mirrors it can be downloaded from. **A new dataset is one entry in
`DATASETS`** (plus, only if its files are in a layout dlab does not read yet, one format in
`dlab.data.formats`). Must not import numpy or torch: config validation imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: how it is stored, what it holds, and where the official copy lives.

    Attributes:
        kind: the storage format, a key of `dlab.data.formats.FORMATS` ("idx", "cifar10",
            "imagefolder").
        classes: class names; label i is classes[i].
        shape: (C, H, W) of every image.
        mean, std: the per-channel statistics of the training images scaled to [0, 1]
            (one value per channel), for input normalization.
        files: per split, the (images, labels) IDX file stems (kind "idx").
        sha256: SHA-256 of each *uncompressed* IDX file, by stem (kind "idx").
        urls: mirror base URLs, tried in order.
        archives: archive file name -> its MD5 (32 hex digits) or SHA-256 (64); a download
            fetches the first one listed.
        install_hint: another way to get the dataset, for the message when no copy is found.
    """

    name: str
    kind: str
    classes: tuple[str, ...]
    shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    files: dict[str, tuple[str, str]] = field(default_factory=dict)
    sha256: dict[str, str] = field(default_factory=dict)
    urls: tuple[str, ...] = ()
    archives: dict[str, str] = field(default_factory=dict)
    install_hint: str = ""


_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist", kind="idx", classes=tuple(str(i) for i in range(10)), shape=(1, 28, 28),
        mean=(0.1307,), std=(0.3081,), files=_IDX_FILES,
        sha256={
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        urls=("https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://yann.lecun.com/exdb/mnist/"),
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist", kind="idx", classes=FASHION_CLASSES, shape=(1, 28, 28),
        mean=(0.2860,), std=(0.3530,), files=_IDX_FILES,
        sha256={
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        urls=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        install_hint=("run `apt-get install dataset-fashion-mnist`, which installs it into "
                      "/usr/share/datasets/fashion-mnist"),
    ),
    "cifar10": DatasetSpec(
        name="cifar10", kind="cifar10", classes=CIFAR10_CLASSES, shape=(3, 32, 32),
        mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616),
        urls=("https://www.cs.toronto.edu/~kriz/",),
        archives={
            "cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530",
            "cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a",
        },
    ),
}


def get_spec(name: str) -> DatasetSpec:
    """The spec for `name`; an unknown name is a one-line error listing the known ones."""
    from dlab.errors import DlabError

    if name not in DATASETS:
        raise DlabError(f"unknown dataset {name!r}; expected one of: " + ", ".join(DATASETS))
    return DATASETS[name]


def dataset_stats(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The dataset's own normalization statistics.

    Returns:
        (mean, std): one value per channel each, of the training images scaled to [0, 1].
    """
    spec = get_spec(name)
    return spec.mean, spec.std
