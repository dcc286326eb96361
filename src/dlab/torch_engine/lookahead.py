"""Lookahead over a running average of the weights (`optim.lookahead = K`), as airbench does it.

Every K optimizer steps the average moves toward the weights, `avg ← d·avg + (1 − d)·w`, and
the weights are set to the average: the fast weights explore for K steps, then are pulled back.
The decay grows over the run, d = 0.95^K · (t / T)³ at step t of T, so early on the average is
the weights themselves (no pull) and late in the run it remembers ~K / (1 − d) steps. After the
last step the weights are the average. Batch-norm running statistics are averaged too (every
floating-point entry of the state dict); step counters are not.
"""

from __future__ import annotations

import torch
from torch import nn


class Lookahead:
    def __init__(self, model: nn.Module, every: int, total_steps: int):
        self.every, self.total = every, max(1, total_steps)
        self.steps = 0
        # the state dict's tensors share the model's storage (updated in place by optimizer
        # steps, batch norm and checkpoint loads), so they are read once here, not every pull
        entries = [(k, v) for k, v in model.state_dict().items() if v.is_floating_point()]
        self.keys = [k for k, _ in entries]
        self.values = [v for _, v in entries]
        self.average = [v.detach().clone() for v in self.values]

    def decay(self, step: int) -> float:
        return 0.95 ** self.every * (step / self.total) ** 3

    @torch.no_grad()
    def after_step(self) -> None:
        """Call after each optimizer step."""
        self.steps += 1
        if self.steps >= self.total:
            self._pull(1.0)  # the last step: the weights become the average
        elif self.steps % self.every == 0:
            self._pull(self.decay(self.steps))

    def _pull(self, decay: float) -> None:
        torch._foreach_lerp_(self.average, self.values, 1.0 - decay)  # few kernels on a GPU
        torch._foreach_copy_(self.values, self.average)

    # checkpoints: the average and the step count, under "lookahead." keys
    def state(self) -> dict[str, torch.Tensor]:
        out = {f"lookahead.{k}": v.cpu() for k, v in zip(self.keys, self.average)}
        out["lookahead_steps"] = torch.tensor([self.steps])
        return out

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        if "lookahead_steps" not in tensors:
            return
        self.steps = int(tensors["lookahead_steps"][0])
        for key, avg in zip(self.keys, self.average):
            avg.copy_(tensors[f"lookahead.{key}"])
