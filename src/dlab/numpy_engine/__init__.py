"""dlab's from-scratch engine: layers, losses, update rules and a solver in plain numpy.

Every layer is a pair `<op>_forward(x, ...) -> (out, cache)` / `<op>_backward(dout, cache) ->
grads`; the cache holds what the backward pass needs. Images are NCHW, vectors (N, D).
This package must never import torch (dlab.data, which is torch-free, is allowed).
"""
