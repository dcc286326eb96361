"""`SynthSpec`: what a synthetic set (`synth`) is made of. Apart from `synth` so that the command
line can show its defaults without importing numpy."""

from __future__ import annotations

from dataclasses import dataclass

from dlab.errors import DlabError


@dataclass(frozen=True)
class SynthSpec:
    """What a synthetic set is made of; the same spec (and data) gives the same files."""

    train: int = 3000
    test: int = 80
    compositional: int = 80
    seed: int = 1
    two_digit_fraction: float = 0.3
    min_refs: int = 5
    max_refs: int = 20
    digit_pool: int = 10  # MNIST images per digit class (0 = every training image)
    feature_seed: int = 1234
    feature_map: int = 2  # 1: random filters only; 2: and class evidence (see the module doc)

    def sizes(self) -> dict[str, int]:
        """Videos per split."""
        return {"training": self.train, "testing": self.test,
                "compositional": self.compositional}

    def validate(self) -> None:
        for key in ("train", "test", "compositional"):
            if getattr(self, key) < 1:
                raise DlabError(f"synthetic set size {key} = {getattr(self, key)}; expected >= 1")
        if not 0.0 <= self.two_digit_fraction <= 1.0:
            raise DlabError(f"two_digit_fraction = {self.two_digit_fraction}; expected 0..1")
        if not 1 <= self.min_refs <= self.max_refs <= 40:
            raise DlabError(f"references per video {self.min_refs}..{self.max_refs}; expected "
                            "1 <= min <= max <= 40")
        if self.digit_pool < 0:
            raise DlabError(f"digit_pool = {self.digit_pool}; expected >= 0")
        if self.feature_map not in (1, 2):
            raise DlabError(f"feature_map = {self.feature_map}; expected 1 or 2")
