"""Weight initialization: He (for ReLU) and Xavier/Glorot (for tanh, sigmoid), normal or uniform.

`fan_in`/`fan_out` of an affine weight (D, M) are D and M; of a conv weight (F, C, HH, WW) they
are C*HH*WW and F*HH*WW. Must not import torch.
"""

from __future__ import annotations

import numpy as np

from dlab.errors import DlabError


def fans(shape):
    if len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) == 4:
        field = shape[2] * shape[3]
        return shape[1] * field, shape[0] * field
    raise DlabError(f"weight shape {shape}; expected (D, M) or (F, C, HH, WW)")


def he_normal(shape, rng, dtype=np.float64):
    fan_in, _ = fans(shape)
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)


def he_uniform(shape, rng, dtype=np.float64):
    fan_in, _ = fans(shape)
    bound = np.sqrt(6.0 / fan_in)
    return rng.uniform(-bound, bound, shape).astype(dtype)


def xavier_normal(shape, rng, dtype=np.float64):
    fan_in, fan_out = fans(shape)
    return (rng.standard_normal(shape) * np.sqrt(2.0 / (fan_in + fan_out))).astype(dtype)


def xavier_uniform(shape, rng, dtype=np.float64):
    fan_in, fan_out = fans(shape)
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, shape).astype(dtype)


INITS = {"he": he_normal, "he_uniform": he_uniform, "xavier": xavier_normal,
         "xavier_uniform": xavier_uniform}


def get_init(name: str):
    if name not in INITS:
        raise DlabError(f"unknown initialization {name!r}; expected one of {sorted(INITS)}")
    return INITS[name]
