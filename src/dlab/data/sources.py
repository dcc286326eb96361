"""The dataset registry: names, classes, file names, checksums and official download URLs.

Pure data, no I/O. Must not import torch or numpy (config validation imports it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: how it is stored and where the official copy lives.

    `files` maps a split to its (images, labels) IDX file names (without .gz); `sha256` holds
    the digests of the *uncompressed* IDX files. For CIFAR-10, `archives` maps an official
    archive name to its md5 and `urls` lists where it can be downloaded.
    """

    name: str
    kind: str  # "idx" or "cifar10"
    classes: tuple[str, ...]
    shape: tuple[int, int, int]  # C, H, W
    mean: tuple[float, ...]
    std: tuple[float, ...]
    files: dict[str, tuple[str, str]] = field(default_factory=dict)
    sha256: dict[str, str] = field(default_factory=dict)
    urls: tuple[str, ...] = ()
    archives: dict[str, str] = field(default_factory=dict)


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
