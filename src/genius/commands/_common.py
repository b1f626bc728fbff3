"""Arguments shared by several subcommands."""

from __future__ import annotations

import argparse
from typing import Any

from genius.engines.options import ENGINE_NAMES
from genius.models import DEFAULT_MODEL


def add_model_arguments(p: argparse.ArgumentParser, *, default: str | None = DEFAULT_MODEL) -> None:
    p.add_argument("--model", default=default,
                   help=f"model spec: embedded name, local HF folder or hub id (default: {default})")
    p.add_argument("--dtype", default="auto", choices=["auto", "bf16", "fp16", "fp32"],
                   help="weights dtype; auto = bf16 where the hardware runs it fast, else fp32")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="allow model code from the model folder / hub (off by default: it runs foreign code)")
    p.add_argument("--engine", default=None, choices=ENGINE_NAMES,
                   help="generation backend: hf, vllm, or auto = vllm where installed and a GPU is there "
                        "(default: the config's engine, else auto)")


def engine_from_args(args: argparse.Namespace, cfg: Any = None, **kwargs: Any) -> Any:
    """The engine of a command: model flags, and the engine settings of ``cfg`` (a config with
    ``engine`` and ``engine_options``, which ``--engine`` already overrode) when it has them."""
    from genius.engines import make_engine

    engine = getattr(cfg, "engine", None) or args.engine or "auto"
    return make_engine(args.model, engine=engine, options=getattr(cfg, "engine_options", None), dtype=args.dtype,
                       device=args.device, trust_remote_code=args.trust_remote_code, **kwargs)


def add_parallel_arguments(p: argparse.ArgumentParser) -> None:
    from genius.ranks import PARALLEL_MODES

    p.add_argument("--parallel", default="rank", choices=PARALLEL_MODES,
                   help="under torchrun / accelerate launch: rank = every process generates its share of the "
                        "items on its own GPU; node = the first process of each node generates the node's share "
                        "with all its GPUs (e.g. --engine vllm with tensor parallelism), the others wait")
    p.add_argument("--shard", default=None,
                   help="i/n: do shard i of n by hand (separate jobs; the last to finish merges). "
                        "Default: this process's share under torchrun, else everything")


def launch_share(args: argparse.Namespace) -> tuple[Any, bool] | None:
    """This process's share of a generation command: (shard, whether the shards are the
    processes of one launch), with ``args.device`` set to its GPU; None when it has nothing to
    generate (node mode, not the first process of its node)."""
    from genius.ranks import Ranks, parse_shard

    if args.shard is not None:
        return parse_shard(args.shard), False
    ranks = Ranks.from_env()
    if not ranks.generates(args.parallel):
        print(f"rank {ranks.rank}: --parallel node, the first process of this node generates; nothing to do here")
        return None
    args.device = ranks.device(args.device, args.parallel)
    return ranks.shard(args.parallel), ranks.launched

