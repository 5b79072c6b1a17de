"""astevo: evolve the source code of neural networks with a local language model, offline."""

__version__ = "0.3.0"
