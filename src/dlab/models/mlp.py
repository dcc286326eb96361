"""A multi-layer perceptron with any widths and activation ("mlp")."""

from __future__ import annotations

from dataclasses import dataclass

from dlab.models import LARGEST_INPUT, ModelSpec, check, check_activation, check_fraction, \
    check_size


@dataclass(frozen=True)
class MLPConfig:
    """flatten → [Linear → (BN) → activation → (dropout)] per hidden width → Linear."""

    name: str = "mlp"
    hidden: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    dropout: float = 0.0  # after each hidden activation
    batch_norm: bool = False

    def validate(self) -> None:
        check(all(h >= 1 for h in self.hidden),
              f"model.hidden = {list(self.hidden)}; expected widths >= 1")
        check_size("model.hidden", list(self.hidden), self.parameters(), "500 M parameters")
        check_activation(self.activation)
        check_fraction("dropout", self.dropout)

    def parameters(self) -> float:
        """How many weights the layers hold on the largest input (biases aside)."""
        widths = [LARGEST_INPUT[0] * LARGEST_INPUT[1] * LARGEST_INPUT[2], *self.hidden, 10]
        return float(sum(a * b for a, b in zip(widths, widths[1:])))


def build(cfg: MLPConfig, in_shape: tuple[int, int, int], num_classes: int):
    from torch import nn

    from dlab.torch_engine.blocks import activation

    layers: list[nn.Module] = [nn.Flatten()]
    width = in_shape[0] * in_shape[1] * in_shape[2]
    for h in cfg.hidden:
        layers.append(nn.Linear(width, h))
        if cfg.batch_norm:
            layers.append(nn.BatchNorm1d(h))
        layers.append(activation(cfg.activation))
        if cfg.dropout > 0:
            layers.append(nn.Dropout(cfg.dropout))
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


MODEL = ModelSpec("mlp", MLPConfig, build, channels_last=False, thread_invariant=lambda cfg: True,
                  doc="a multi-layer perceptron of any widths")
