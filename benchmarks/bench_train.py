"""Reference log-probs precomputed once vs a reference forward pass every step.

Trains the same pairs with the same settings for a fixed number of steps, once per mode, each in
its own process (so that peak memory is that run's own: ru_maxrss), and prints pairs/s, peak
memory and their ratios side by side, then checks that the two loss curves agree.

    python benchmarks/bench_train.py                       # embedded model, 8 steps x 4 pairs
    python benchmarks/bench_train.py --steps 4 --lora      # LoRA: online = adapter-disabled pass

With a full fine-tune the online mode holds a second, frozen copy of the model; with LoRA it runs
the policy with its adapters off (no copy, but one more forward pass per step either way).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_pairs(path: Path, n: int, seed: int = 0) -> Path:
    """Arithmetic questions: a correct worked answer (chosen) vs a wrong one (rejected)."""
    rng = random.Random(seed)
    with path.open("w") as f:
        for i in range(n):
            a, b, c = rng.randint(2, 40), rng.randint(2, 40), rng.randint(2, 9)
            good, bad = (a + b) * c, (a + b) * c + rng.randint(1, 9)
            f.write(json.dumps({
                "query_id": f"b{i}", "step": 1,
                "prompt": f"A box holds {a} red and {b} blue balls. How many balls are in {c} boxes?",
                "chosen": f"The reasoning steps are:\n\nOne box holds {a} + {b} = {a + b} balls.\n"
                          f"{c} boxes hold {a + b} x {c} = {good} balls.\nThe answer is: {good}",
                "rejected": f"The reasoning steps are:\n\nOne box holds {a} + {b} = {a + b + 1} balls.\n"
                            f"So the boxes hold {bad} balls.\nThe answer is: {bad}",
                "A_w": rng.uniform(-0.1, 0.3), "A_l": rng.uniform(-0.5, 0.4)}) + "\n")
    return path


def worker(args: argparse.Namespace) -> None:
    from genius.config import from_dict
    from genius.io import read_jsonl
    from genius.training import TrainConfig, run_train

    cfg = from_dict(TrainConfig, {
        "model": args.model, "data": args.data, "loss": "aco", "lr": 1e-5, "warmup_ratio": 0.0,
        "max_steps": args.steps, "per_device_batch_size": args.batch, "max_length": 384, "save_every": 0,
        "cpu": True, "dtype": "fp32", "reference_mode": args.mode, "reference_cache_dir": args.cache,
        **({"lora": {"r": 16, "alpha": 32, "dropout": 0.0}} if args.lora else {})})
    t0 = time.perf_counter()
    run_train(cfg, Path(args.out))
    wall = time.perf_counter() - t0
    log = read_jsonl(Path(args.out) / "train_log.jsonl")
    print("RESULT " + json.dumps({
        "wall": wall, "train_seconds": log[-1]["seconds"], "pairs": log[-1]["pairs_seen"],
        "losses": [r["loss"] for r in log], "margins": [r["reward_margin"] for r in log],
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def run_mode(mode: str, args: argparse.Namespace, tmp: Path) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--mode", mode, "--data", str(args.data), "--out", str(tmp / mode),
           "--cache", str(tmp / "cache"), "--steps", str(args.steps), "--batch", str(args.batch),
           "--model", args.model] + (["--lora"] if args.lora else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode or not lines:
        sys.exit(f"{mode} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[0][len("RESULT "):])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--data", type=Path, default=None,
                   help="pairs.jsonl (default: steps x batch generated arithmetic pairs, i.e. one epoch)")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lora", action="store_true")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="precompute", help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    p.add_argument("--cache", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp_name:
        tmp = Path(tmp_name)
        if args.data is None:
            args.data = make_pairs(tmp / "pairs.jsonl", args.steps * args.batch)
        res = {mode: run_mode(mode, args, tmp) for mode in ("precompute", "online")}
    pre, onl = res["precompute"], res["online"]
    print(f"model {args.model} ({'LoRA r16' if args.lora else 'full fine-tune'}), {args.steps} steps x "
          f"{args.batch} pairs, fp32 CPU")
    print(f"{'':34s}{'precompute':>12s}{'online':>12s}{'ratio':>8s}")
    rows = [("train-loop pairs/s", pre["pairs"] / pre["train_seconds"], onl["pairs"] / onl["train_seconds"]),
            ("end-to-end pairs/s (incl. ref.)", pre["pairs"] / pre["wall"], onl["pairs"] / onl["wall"]),
            ("peak memory MB (maxrss)", pre["maxrss_mb"], onl["maxrss_mb"])]
    for name, a, b in rows:
        print(f"{name:34s}{a:12.4g}{b:12.4g}{a / b:8.2f}")
    diff = max(abs(a - b) for a, b in zip(pre["losses"], onl["losses"], strict=True))
    print("loss curve precompute: " + " ".join(f"{v:.4f}" for v in pre["losses"]))
    print("loss curve online:     " + " ".join(f"{v:.4f}" for v in onl["losses"]))
    print(f"max |loss difference| = {diff:.2e} -> {'agree' if diff < 1e-3 else 'DISAGREE'} (tolerance 1e-3)")


if __name__ == "__main__":
    main()
