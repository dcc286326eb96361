"""Checkpoints as safetensors (every tensor) + JSON (config, step, everything else).

Layout in a run's `checkpoints/`: `<name>.json` names its weights file `<name>-e<epoch>.safetensors`
and records that file's SHA-256. The weights file is written first under a fresh name, then the
JSON is replaced atomically, then stale weight files are removed: a kill at any point leaves the
previous complete checkpoint or the new one, never a torn pair. Nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from dlab.config import RunConfig, resolve
from dlab.errors import DlabError
from dlab.runs import atomic_write_bytes, atomic_write_json


MAIN = "model"  # the main model's and optimizer's name: tensors "model.*" and "optim.*"


def _prefix(kind: str, name: str) -> str:
    """Tensor-name prefix of model/optimizer `name` ("model." for the main model, as dlab 0.1
    wrote it; "model:<name>." for the others — ':' never occurs in a state-dict key)."""
    return f"{kind}." if name == MAIN else f"{kind}:{name}."


def _split_optimizer_state(state: dict[str, Any], prefix: str = "optim."
                           ) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, plain = {}, {"param_groups": state["param_groups"], "state": {}}
    for pid, slots in state["state"].items():
        plain["state"][str(pid)] = {}
        for key, value in slots.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain["state"][str(pid)][key] = value
    return tensors, plain


def _join_optimizer_state(tensors: dict[str, torch.Tensor], plain: dict,
                          prefix: str = "optim.") -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {int(pid): dict(slots) for pid, slots in plain["state"].items()}
    for key, value in tensors.items():
        if key.startswith(prefix):
            pid, slot = key[len(prefix):].split(".", 1)
            state.setdefault(int(pid), {})[slot] = value
    return {"state": state, "param_groups": plain["param_groups"]}


def save_checkpoint(folder: Path, name: str, *, meta: dict[str, Any],
                    model: torch.nn.Module | None = None,
                    optimizer: torch.optim.Optimizer | None = None,
                    models: dict[str, torch.nn.Module] | None = None,
                    optimizers: dict[str, torch.optim.Optimizer] | None = None,
                    extra_tensors: dict[str, torch.Tensor] | None = None) -> Path:
    """Write checkpoint `name` ("best", "last") into `folder`; returns the JSON path.

    Args:
        meta: JSON-serializable facts: config, epoch, step, in_shape, num_classes, classes …
        model, optimizer: shorthand for `models={"model": model}` (and the same optimizers).
        models, optimizers: any number of each, by name (a GAN's generator, critic, EMA …).
        extra_tensors: e.g. RNG states (uint8 tensors), stored beside the weights.
    """
    models = dict(models or {})
    optimizers = dict(optimizers or {})
    if model is not None:
        models[MAIN] = model
    if optimizer is not None:
        optimizers[MAIN] = optimizer
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for key, module in models.items():
        pre = _prefix("model", key)
        tensors.update({f"{pre}{k}": v.detach().cpu().contiguous()
                        for k, v in module.state_dict().items()})
    meta = dict(meta)
    for key, opt in optimizers.items():
        opt_tensors, plain = _split_optimizer_state(opt.state_dict(), _prefix("optim", key))
        tensors.update(opt_tensors)
        if key == MAIN:
            meta["optimizer"] = plain
        else:
            meta.setdefault("optimizers", {})[key] = plain
    for key, value in (extra_tensors or {}).items():
        tensors[f"extra.{key}"] = value.detach().cpu().contiguous()
    blob = st_save(tensors)
    weights = f"{name}-e{int(meta.get('epoch', 0)):04d}.safetensors"
    atomic_write_bytes(folder / weights, blob)
    meta.update(weights=weights, sha256=hashlib.sha256(blob).hexdigest())
    atomic_write_json(folder / f"{name}.json", meta)
    for stale in folder.glob(f"{name}-e*.safetensors"):
        if stale.name != weights:
            stale.unlink(missing_ok=True)
    return folder / f"{name}.json"


def copy_checkpoint(src: str | Path, folder: Path, name: str) -> None:
    """Copy checkpoint `src`, checksum-verified (its weights file first, then the JSON), into
    `folder` as `name`."""
    meta, blob = _read_verified(checkpoint_json(src))
    meta["weights"] = f"{name}-e{int(meta.get('epoch', 0)):04d}.safetensors"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / meta["weights"], blob)
    atomic_write_json(folder / f"{name}.json", meta)


def checkpoint_json(path: str | Path) -> Path:
    """Resolve a run dir, a checkpoints dir entry ("…/best") or a .json path to the JSON file."""
    path = Path(path)
    candidates = [path] if path.suffix == ".json" else [
        path.with_name(path.name + ".json"), path / "checkpoints" / "best.json",
        path / "best.json"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DlabError(f"checkpoint {str(path)!r} not found (expected a run directory, "
                    "'<run>/checkpoints/best' or '<run>/checkpoints/last', or its .json)")


def read_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The checkpoint's JSON facts and all its tensors, checksum-verified."""
    meta, blob = _read_verified(checkpoint_json(path))
    return meta, st_load(blob)


def _read_verified(json_path: Path) -> tuple[dict[str, Any], bytes]:
    """A checkpoint's JSON facts and its weights file's bytes, checked against the SHA-256."""
    try:
        meta = json.loads(json_path.read_text())
        blob = (json_path.parent / meta["weights"]).read_bytes()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DlabError(f"checkpoint {str(json_path)!r} is unreadable: {exc}") from None
    if hashlib.sha256(blob).hexdigest() != meta.get("sha256"):
        raise DlabError(f"checkpoint weights {meta['weights']!r} in {str(json_path.parent)!r} "
                        "do not match their recorded SHA-256 (corrupt file)")
    return meta, blob


def model_state(tensors: dict[str, torch.Tensor], name: str = MAIN) -> dict[str, torch.Tensor]:
    """The state dict of model `name` (the main model by default)."""
    pre = _prefix("model", name)
    return {k[len(pre):]: v for k, v in tensors.items() if k.startswith(pre)}


def optimizer_state(meta: dict[str, Any], tensors: dict[str, torch.Tensor], name: str = MAIN
                    ) -> dict[str, Any]:
    """The state dict of optimizer `name` (the main one by default)."""
    plain = meta["optimizer"] if name == MAIN else meta["optimizers"][name]
    return _join_optimizer_state(tensors, plain, _prefix("optim", name))


def extra_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")}


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu"
                    ) -> tuple[torch.nn.Module, RunConfig, dict[str, Any]]:
    """Rebuild the model saved at `path`: (module in eval mode, its RunConfig, the JSON facts).
    On the CPU its conv → pool → relu runs are fused (`dlab.torch_engine.fused`)."""
    from dlab.torch_engine.fused import fuse
    from dlab.torch_engine.models import build_model

    meta, tensors = read_checkpoint(path)
    where = str(checkpoint_json(path))
    try:
        cfg = resolve(meta["config"])
        in_shape, num_classes = tuple(int(n) for n in meta["in_shape"]), int(meta["num_classes"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DlabError(f"checkpoint {where!r} is damaged or not a classifier's: "
                        f"{type(exc).__name__} {exc}") from None
    model = build_model(cfg.model, in_shape, num_classes)
    try:
        model.load_state_dict(model_state(tensors))
    except RuntimeError:
        raise DlabError(f"checkpoint {where!r}: its weights do not fit model "
                        f"{cfg.model.name!r} of its own config (a damaged checkpoint)") from None
    model = model.to(device).eval()
    fuse(model, torch.device(device))
    return model, cfg, meta
