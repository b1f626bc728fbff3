"""genius: label-free self-training for reasoning (Xu et al., 2025, arXiv 2504.08672)."""

__version__ = "0.1.0"
