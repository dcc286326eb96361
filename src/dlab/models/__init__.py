"""The classifier architectures: one module per architecture, each its config and its builder.

A module here defines `MODEL = ModelSpec(name, ConfigClass, build)`: a frozen config dataclass
(with `name`, its knobs and a `validate()` raising a one-line `DlabError`) and the builder
`build(cfg, in_shape, num_classes) -> torch.nn.Module` (importing torch inside, so configs load
without it). Modules are discovered: a new architecture is one new file here, and `model.name
= "<name>"` in any config selects it. Must not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

from dlab.errors import DlabError
from dlab.plugins import discover, lookup

ACTIVATIONS = ("relu", "gelu", "tanh", "sigmoid", "leaky_relu", "silu", "elu")


@dataclass(frozen=True)
class ModelSpec:
    """One architecture: its config class and builder, registered together."""

    name: str
    config_class: type
    build: Callable[[Any, tuple[int, int, int], int], Any]
    channels_last: bool = True  # conv nets run faster in channels-last memory format on CPU
    # whether training gives bit-identical weights at any CPU thread count (BENCHMARKS.md,
    # "Thread-count invariance": PyTorch's conv backward and channels-last batch norm reduce
    # in thread-dependent order; dlab's fused kernel and linear layers do not)
    thread_invariant: Callable[[Any], bool] = lambda cfg: False
    doc: str = ""


@lru_cache(maxsize=None)
def models() -> dict[str, ModelSpec]:
    """Every architecture by name, discovered from this package's modules (`net` first)."""
    return discover(__name__, __path__, "MODEL", ModelSpec, first="net")


def get_model(name: str) -> ModelSpec:
    """The architecture called `name`; unknown names are a one-line error listing the known."""
    return lookup(models(), name, "model")


def check(ok: bool, message: str) -> None:
    """Raise `DlabError(message)` unless `ok` (for the configs' `validate`)."""
    if not ok:
        raise DlabError(message)


# The largest model a config may ask for: 500 M parameters are 2 GB of float32 weights, 8 GB
# with Adam's state and the gradients; beyond it a typo (width 100000) would try to allocate
# terabytes.
MAX_PARAMETERS = 500_000_000
# the inputs a parameter count is judged on: the largest images of dlab's datasets (CIFAR-10)
LARGEST_INPUT = (3, 32, 32)


def check_size(key: str, value: object, parameters: float, most: str) -> None:
    """Refuse a size knob whose model would exceed MAX_PARAMETERS, naming the value, the
    largest accepted (`most`, e.g. "64") and the parameters it would need."""
    check(parameters <= MAX_PARAMETERS,
          f"{key} = {value}; expected at most {most} (it would make a model of about "
          f"{parameters:.3g} parameters, {4 * parameters / 1e9:.3g} GB of float32 weights; "
          f"the limit is {MAX_PARAMETERS:.0e})")


def check_fraction(key: str, value: float) -> None:
    check(0.0 <= value <= 1.0, f"{key} = {value}; expected a value in [0, 1]")


def check_activation(value: str) -> None:
    check(value in ACTIVATIONS, f"unknown activation {value!r}; expected one of: "
          + ", ".join(ACTIVATIONS))
