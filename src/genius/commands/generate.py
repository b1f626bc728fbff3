"""Sample answers from a model for a quick look: genius generate "question" [--n 2].

Example: genius generate "Tom has 3 apples and buys 5 more. How many apples does he have?"
"""

from __future__ import annotations

import argparse
import sys
import time

from genius.commands._common import add_model_arguments, engine_from_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("prompt", nargs="*", help="the user message (read from stdin when omitted)")
    add_model_arguments(p)
    p.add_argument("--system", default=None, help="optional system message")
    p.add_argument("--prefix", default="", help="text the assistant turn starts with, e.g. 'The reasoning steps are:\\n\\n'")
    p.add_argument("--n", type=int, default=1, help="samples per prompt")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--show-logprobs", action="store_true", help="print the mean token log-prob of each sample")


def run(args: argparse.Namespace) -> int:
    from genius.engines import SamplingParams
    from genius.errors import UserError
    from genius.models import chat_prompt_ids

    text = " ".join(args.prompt) if args.prompt else sys.stdin.read()
    if not text.strip():
        raise UserError("no prompt given (pass it as an argument or on stdin)")
    t0 = time.perf_counter()
    engine = engine_from_args(args)
    load_s = time.perf_counter() - t0
    messages = ([{"role": "system", "content": args.system}] if args.system else []) + [{"role": "user", "content": text}]
    prompt = chat_prompt_ids(engine.tokenizer, messages, args.prefix)
    params = SamplingParams(n=args.n, temperature=args.temperature, top_p=args.top_p,
                            max_new_tokens=args.max_new_tokens, stop=tuple(args.stop), seed=args.seed)
    t1 = time.perf_counter()
    [samples] = engine.generate([prompt], params)
    gen_s = time.perf_counter() - t1
    for i, c in enumerate(samples):
        if args.n > 1:
            print(f"--- sample {i + 1} ({c.finish_reason})")
        print(args.prefix + c.text)
        if args.show_logprobs:
            print(f"[mean log-prob {c.mean_logprob:.4f} over {len(c.token_ids)} tokens]")
    tokens = sum(len(c.token_ids) for c in samples)
    print(f"[{args.model}: loaded in {load_s:.1f}s, {tokens} tokens in {gen_s:.1f}s]", file=sys.stderr)
    return 0
