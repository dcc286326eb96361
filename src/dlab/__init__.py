"""dlab: a deep-learning lab that reproduces the classic course experiments fast and reproducibly."""

__version__ = "0.1.0"
