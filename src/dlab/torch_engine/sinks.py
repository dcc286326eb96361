"""Where a run's progress goes besides metrics.jsonl: the terminal and TensorBoard.

The progress display redraws one line in a terminal and prints one line per epoch when stdout
is not a terminal (logs, CI). TensorBoard gets the scalars `loss`, `acc`, `val_loss`, `val_acc`,
`lr`, a grid of sample images, the run figures, and the hparams in the run's own `tb/` folder.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np




def format_row(row: dict[str, Any], epochs: int) -> str:
    """One epoch's line: every metric of the row (accuracies in %), then lr and seconds."""
    def shown(key: str, v: Any) -> str:
        if v is None:
            return "nan"
        return f"{100 * v:.2f}%" if key.endswith("acc") else f"{v:.4f}"

    skip = ("epoch", "lr", "time_s", "params")
    metrics = "  ".join(f"{k} {shown(k, v)}" for k, v in row.items()
                        if k not in skip and (v is None or isinstance(v, (int, float))))
    return (f"epoch {row['epoch']}/{epochs}  {metrics}  "
            f"lr {row.get('lr') or 0:.3g}  {row.get('time_s') or 0:.1f}s")


class Progress:
    """A per-step bar on a terminal; one line per epoch otherwise (or nothing when disabled)."""

    def __init__(self, enabled: bool, epochs: int, steps_per_epoch: int, stream=None):
        self.stream = stream or sys.stdout
        self.enabled = enabled
        self.tty = enabled and self.stream.isatty()
        self.epochs, self.steps = epochs, steps_per_epoch
        self._start = time.perf_counter()
        self._every = max(1, steps_per_epoch // 50)

    def start_epoch(self, epoch: int) -> None:
        self._epoch, self._start = epoch, time.perf_counter()

    def step(self, i: int) -> None:
        if not self.tty or (i % self._every and i != self.steps):
            return
        width = 30
        done = int(width * i / self.steps)
        elapsed = time.perf_counter() - self._start
        self.stream.write(f"\repoch {self._epoch}/{self.epochs} [{'#' * done}{'.' * (width - done)}]"
                          f" {i}/{self.steps} {elapsed:.1f}s")
        self.stream.flush()

    def end_epoch(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        prefix = "\r\033[K" if self.tty else ""
        self.stream.write(prefix + format_row(row, self.epochs) + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        if self.enabled:
            self.stream.write(text + "\n")
            self.stream.flush()


class TensorBoardSink:
    """Writes the run's TensorBoard events under `<run_dir>/tb`."""

    def __init__(self, log_dir: Path, purge_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def sample_images(self, images_uint8: np.ndarray, tag: str = "samples") -> None:
        self.writer.add_images(tag, images_uint8[:64].astype(np.float32) / 255.0, 0)

    def epoch(self, row: dict[str, Any]) -> None:
        """Every number of a metrics row as a scalar (loss, acc, val_loss, val_acc, lr …)."""
        for key, value in row.items():
            if key not in ("epoch", "params") and isinstance(value, (int, float)) \
                    and not isinstance(value, bool):
                self.writer.add_scalar(key, value, row["epoch"])
        self.writer.flush()

    def figure_png(self, tag: str, png: Path, step: int) -> None:
        from PIL import Image

        with Image.open(png) as img:
            self.writer.add_image(tag, np.asarray(img.convert("RGB")), step, dataformats="HWC")

    def hparams(self, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
        self.writer.add_hparams(hparams, metrics, run_name=".")

    def close(self) -> None:
        self.writer.close()


def flat_hparams(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten a config dict to TensorBoard-friendly scalars ("optim.lr": 0.01, …)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_hparams(value, name + "."))
        elif isinstance(value, (list, tuple)):
            out[name] = str(list(value))
        elif value is None:
            out[name] = "none"
        else:
            out[name] = value
    return out
