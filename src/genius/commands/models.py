"""Show and prepare models: genius models list | resolve SPEC | convert [NAME] [--force].

resolve prints the local folder a spec loads from (converting the embedded model on first use)
and the time the load took; convert rebuilds an embedded model's cached HF folder.
"""

from __future__ import annotations

import argparse
import time


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser("list", help="the embedded models and their cache state")
    r = sub.add_parser("resolve", help="resolve a spec, load it, print where it lives")
    r.add_argument("spec", help="embedded name, local HF folder, or hub id")
    r.add_argument("--no-load", action="store_true", help="only resolve the path (do not load the weights)")
    c = sub.add_parser("convert", help="(re)build the cached HF folder of an embedded model")
    c.add_argument("name", nargs="?", default="smollm2-135m")
    c.add_argument("--force", action="store_true", help="rebuild even when the cache is complete")


def run(args: argparse.Namespace) -> int:
    from genius import models
    from genius.errors import UserError

    if args.action == "list":
        for row in models.list_models():
            print(f"{row['name']}: {row['description']}")
            print(f"  source:    {row['source']}")
            print(f"  cache:     {row['cache']} (converted: {row['converted']})")
        print(f"cache root: {models.cache_root()} (set GENIUS_CACHE to move it)")
        return 0
    if args.action == "convert":
        if args.name not in models.EMBEDDED:
            raise UserError(f"unknown embedded model '{args.name}': expected one of {', '.join(models.EMBEDDED)}")
        t0 = time.perf_counter()
        path = models.convert_embedded(models.EMBEDDED[args.name], force=args.force)
        print(f"{args.name}: {path} ({time.perf_counter() - t0:.1f}s)")
        return 0
    t0 = time.perf_counter()
    path = models.resolve(args.spec)
    if args.no_load:
        print(path)
        return 0
    model, tok = models.load_model(args.spec)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{args.spec}: {path}")
    print(f"  {type(model).__name__}, {n_params / 1e6:.1f}M parameters, {model.dtype}, context {models.context_length(model)}, "
          f"vocab {len(tok)}; resolved and loaded in {time.perf_counter() - t0:.1f}s")
    return 0
