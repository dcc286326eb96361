"""The MLP ladder: one MLP, five implementations that must agree step by step.

Rungs: the numpy engine (`numpy_rung`), PyTorch tensors with hand-written gradients
(`torch_manual`), PyTorch autograd (`torch_autograd`), PyTorch `nn` modules (`torch_nn`) and
Keras 3 on its torch backend (`keras_mlp`). All share `LadderConfig` and the entry point
`train_steps(cfg, params, batches) -> LadderResult`. Rungs may import torch / keras; this
package's `config` module does not.
"""
