"""Stepwise foresight re-sampling: queries -> foresight trees -> preference pairs.

    from genius.sampling import SampleConfig, run_sample, build_pairs
    stats = run_sample(SampleConfig(), load_queries("queries.jsonl"), Path("runs/r1"), engine)
"""

from genius.sampling.config import SampleConfig
from genius.sampling.pairs import build_pairs, pairs_for_tree
from genius.sampling.runner import merge_shards, run_sample

__all__ = ["SampleConfig", "build_pairs", "merge_shards", "pairs_for_tree", "run_sample"]
