"""The PyTorch training engine: models from config, the training loop, evaluation, checkpoints.

Never imports `dlab.numpy_engine`; numpy-vs-torch parity lives in the tests.
"""
