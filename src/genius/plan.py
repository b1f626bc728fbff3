"""``genius run CONFIG --plan``: what every stage of a run will need, before any work is done.

For each stage: the model, the engine, the processes and GPUs, the batch, the estimated memory
per GPU against the GPU's memory, the tokens to generate, and the time they take at a rate the
user gives (``--tokens-per-s``). No weights are loaded: model shapes come from config.json (a
local folder, the embedded model or the hub cache) or, offline, from the shapes of the paper
presets' models written below. Evaluation item counts come from the task data when it is at
hand (``eval.data_dir`` or built-in problems), else they are shown as unknown.

Memory, in one place so that it can be checked by hand:
- generation on hf: weights + the KV cache and prefill of one chunk (``engines.memory.plan_chunk``);
  on vLLM: ``gpu_memory_utilization`` of the GPU, of which weights / tensor_parallel_size and
  the rest KV cache (it must hold one ``max_model_len`` sequence);
- training (Adam): weights and gradients in the training dtype, two fp32 moments (and an fp32
  master copy under bf16/fp16 weights), sharded over the GPUs as the mode says (ddp: nothing
  sharded; zero2: gradients and optimizer; zero3/fsdp: everything), plus activations: with
  gradient checkpointing one hidden state per layer and token, and one layer's full activations;
  the fp32 logits of chosen and rejected responses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

from genius.engines.memory import ModelShape, plan_chunk
from genius.errors import UserError

GIB = 2**30
Distributed = Literal["ddp", "zero2", "zero3", "fsdp"]

KNOWN_CONFIGS: dict[str, SimpleNamespace] = {
    # config.json values of the paper presets' models, for planning without hub access
    "meta-llama/Llama-3.1-8B-Instruct": SimpleNamespace(
        num_hidden_layers=32, hidden_size=4096, num_attention_heads=32, num_key_value_heads=8, head_dim=128,
        intermediate_size=14336, vocab_size=128256, tie_word_embeddings=False),
    "Qwen/Qwen2.5-7B-Instruct": SimpleNamespace(
        num_hidden_layers=28, hidden_size=3584, num_attention_heads=28, num_key_value_heads=4, head_dim=128,
        intermediate_size=18944, vocab_size=152064, tie_word_embeddings=False),
}
TYPICAL_QUERY_TOKENS = 300
"""A chat-formatted Magpie/OpenHermes query (most are shorter)."""
TYPICAL_EVAL_PROMPT_TOKENS = 1000
"""A few-shot GSM8K/MATH prompt of the paper preset with its question."""
DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}


@dataclass
class StagePlan:
    name: str
    model: str
    engine: str
    processes: str
    batch: str
    memory: dict[str, int]
    """What the stage holds per GPU, in bytes, by part."""
    device_bytes: int
    tokens: int | None
    """Tokens to generate (an upper bound: every budget used up); None: unknown, or no generation."""
    fits: bool
    note: str = ""
    engines: int = 1
    """Engines generating at once (one per process, or per node with parallel: node)."""

    @property
    def total(self) -> int:
        return sum(self.memory.values())


def parameter_count(config: Any) -> int:
    """Weights of a Llama-shaped decoder: embeddings, (untied) head, per layer q/k/v/o, the
    gated MLP and two norms, the final norm."""
    s = ModelShape.from_config(config, 1)
    attention = s.hidden * s.heads * s.head_dim * 2 + s.hidden * s.kv_heads * s.head_dim * 2
    layer = attention + 3 * s.hidden * s.intermediate + 2 * s.hidden
    head = 0 if getattr(config, "tie_word_embeddings", False) else s.vocab * s.hidden
    return s.vocab * s.hidden + head + s.layers * layer + s.hidden


def model_shape_config(spec: str) -> Any:
    """config.json of ``spec`` without weights: local or cached, else a paper preset's known shape."""
    from genius.models import model_config

    try:
        return model_config(spec)[0]
    except (UserError, OSError, ValueError):
        if spec in KNOWN_CONFIGS:
            return KNOWN_CONFIGS[spec]
        raise UserError(f"--plan: cannot read config.json of '{spec}' (offline and not in the hub cache); "
                        f"pass a local folder, or plan one of {', '.join(KNOWN_CONFIGS)}") from None


def training_memory(config: Any, train: Any, gpus: int, mode: Distributed) -> dict[str, int]:
    """Per-GPU bytes of one training process (see the module docstring for the rule)."""
    params = parameter_count(config)
    wbytes = 2 if train.dtype in ("bf16", "fp16") else 4
    shard_w = gpus if mode in ("zero3", "fsdp") else 1
    shard_g = gpus if mode in ("zero2", "zero3", "fsdp") else 1
    master = 4 if wbytes == 2 else 0
    s = ModelShape.from_config(config, 2 if train.mixed_precision != "no" or wbytes == 2 else 4)
    tokens = train.per_device_batch_size * 2 * train.max_length  # chosen and rejected
    if train.gradient_checkpointing:
        acts = tokens * s.hidden * s.dtype_bytes * s.layers + tokens * s.dtype_bytes * (
            16 * s.hidden + 2 * s.intermediate + s.heads * train.max_length)
    else:
        acts = tokens * s.dtype_bytes * s.layers * (16 * s.hidden + 2 * s.intermediate + s.heads * train.max_length)
    memory = {
        "weights": params * wbytes // shard_w,
        "gradients": params * wbytes // shard_g,
        "optimizer": params * (8 + master) // shard_g,
        "activations": acts,
        "logits (fp32)": tokens * s.vocab * 4,
    }
    if train.reference_mode == "online":
        memory["reference weights"] = params * 2 // shard_w
    return memory


def generation_plan(name: str, shape_config: Any, spec: str, engine: str, options: Any, dtype: str, *,
                    prompt_tokens: int, new_tokens: int, samples: int, rows: int, device_bytes: int,
                    tokens: int | None, label: str = "", engines: int = 1) -> StagePlan:
    """One generation stage on ``engines`` engines, each on one GPU (vLLM: tensor_parallel_size)."""
    dtype_bytes = DTYPE_BYTES.get(dtype, 2)
    shape = ModelShape.from_config(shape_config, dtype_bytes)
    weights = parameter_count(shape_config) * dtype_bytes
    util = options.memory_utilization("cuda")
    if engine == "vllm":
        tp = options.tensor_parallel_size
        kv = int(util * device_bytes) - weights // tp
        need = options.max_model_len * shape.kv_bytes_per_token // tp
        note = (f"KV room {max(kv, 0) * tp // shape.kv_bytes_per_token:,} tokens = "
                f"{max(kv, 0) // max(need, 1)} sequences of {options.max_model_len} at once")
        memory = {"weights": weights // tp, "KV cache (vLLM's share)": max(kv, 0)}
        gpus = f"{engines} ({tp} GPU{'s' if tp > 1 else ''} each)"
        return StagePlan(name, spec, label or "vllm", gpus, f"{rows} sequences per call", memory, device_bytes, tokens,
                         kv >= need, note, engines)
    budget = int(util * device_bytes) - weights
    plan = plan_chunk(shape, prompt_tokens=prompt_tokens, new_tokens=new_tokens, samples=samples,
                      budget_bytes=max(budget, 0))
    per_chunk = min(max(plan.prompts, 0) * samples, rows)
    memory = {"weights": weights, f"KV + prefill of a chunk ({per_chunk} rows)": plan.bytes_per_prompt * (
        max(per_chunk // samples, 1))}
    return StagePlan(name, spec, label or "hf", f"{engines} (1 GPU each)",
                     f"{rows} sequences per call in chunks of {per_chunk}", memory, device_bytes, tokens,
                     plan.prompts >= 1, f"{prompt_tokens}-token prompts, {new_tokens} new tokens", engines)


def plan_run(cfg: Any, *, gpus: int = 8, gpu_gib: float = 79.0, mode: Distributed = "zero3",
             gpus_per_node: int = 8) -> list[StagePlan]:
    """Every stage of ``genius run`` for a pipeline config, planned on ``gpus`` GPUs of ``gpu_gib``
    (one process per GPU; with ``parallel: node`` one engine per node of ``gpus_per_node``)."""
    from genius import pipeline
    from genius.engines.options import vllm_installed

    device = int(gpu_gib * GIB)
    shape_config = model_shape_config(cfg.model)
    # auto picks vLLM on a GPU machine where it is installed: plan it so when it is installed here.
    engine = cfg.engine if cfg.engine != "auto" else ("vllm" if vllm_installed() else "hf")
    dtype = cfg.dtype if cfg.dtype != "auto" else "bf16"
    sample = pipeline.sample_config(cfg, 1)
    ev = pipeline.eval_config(cfg, cfg.model)
    auto_note = "" if engine == "vllm" else ": vLLM not installed here"
    label = engine if cfg.engine != "auto" else f"{engine} (auto{auto_note})"
    tp = cfg.engine_options.tensor_parallel_size
    if cfg.parallel == "rank" and tp > 1:
        raise UserError(f"--plan: engine_options.tensor_parallel_size {tp} needs parallel: node (in rank mode "
                        "every process drives one GPU)")
    engines = gpus if cfg.parallel == "rank" else max(1, gpus // gpus_per_node)
    items = _eval_items(ev)
    eval_tokens = None if items is None else items * ev.samples * ev.max_new_tokens

    def evaluation(name: str, model: str) -> StagePlan:
        return generation_plan(name, shape_config, model, engine, cfg.engine_options, dtype,
                               prompt_tokens=TYPICAL_EVAL_PROMPT_TOKENS, new_tokens=ev.max_new_tokens,
                               samples=ev.samples, rows=ev.batch_size * ev.samples, device_bytes=device,
                               tokens=eval_tokens, label=label, engines=engines)

    plans = [evaluation("eval-base", cfg.model)]
    per_query = sample.steps * sample.beams * sample.candidates * (sample.max_step_tokens + sample.max_rollout_tokens)
    train = pipeline.train_config(cfg, policy=cfg.model, reference=None, data=Path(cfg.run_dir))
    memory = training_memory(shape_config, train, gpus, mode)
    global_batch = train.global_batch_size or train.per_device_batch_size * train.grad_accum * gpus
    for r in range(1, cfg.rounds + 1):
        plans.append(generation_plan(
            f"round{r}-sample", shape_config, cfg.model, engine, cfg.engine_options, dtype,
            prompt_tokens=TYPICAL_QUERY_TOKENS + sample.steps * sample.max_step_tokens,
            new_tokens=sample.max_rollout_tokens, samples=1, rows=sample.batch_sequences, device_bytes=device,
            tokens=cfg.queries.count * per_query, label=label, engines=engines))
        plans.append(StagePlan(
            f"round{r}-train", cfg.model, f"accelerate ({mode})", f"{gpus} ({gpus} GPUs)",
            f"{train.per_device_batch_size} pairs per GPU, global {global_batch}", memory, device, None,
            sum(memory.values()) <= device,
            f"{train.dtype} weights, mixed precision {train.mixed_precision}, gradient checkpointing "
            f"{'on' if train.gradient_checkpointing else 'off'}"))
        plans.append(evaluation(f"round{r}-eval", f"round{r} model"))
    return plans


def _eval_items(ev: Any) -> int | None:
    """Items of all eval tasks when their data is at hand (no hub access), else None."""
    from genius.evaluation.evaluate import _load_items
    from genius.evaluation.tasks import get_task

    total = 0
    for name in ev.tasks:
        task = get_task(name)
        if task.generate is None and ev.data_dir is None:
            return None
        try:
            total += len(_load_items(task, ev))
        except UserError:
            return None
    return total


def format_plan(plans: list[StagePlan], tokens_per_s: float | None) -> str:
    lines = ["| stage | model | engine | processes | batch | memory per GPU | of GPU | tokens | time | fits |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for p in plans:
        time = "-" if p.tokens is None or not tokens_per_s else _duration(p.tokens / (tokens_per_s * p.engines))
        tokens = "-" if p.tokens is None else f"{p.tokens:,}"
        lines.append(f"| {p.name} | {p.model} | {p.engine} | {p.processes} | {p.batch} | {p.total / GIB:.1f} GiB "
                     f"| {p.device_bytes / GIB:.0f} GiB | {tokens} | {time} | {'yes' if p.fits else 'NO'} |")
    lines.append("")
    for p in plans:
        parts = ", ".join(f"{k} {v / GIB:.2f} GiB" for k, v in p.memory.items())
        lines.append(f"- {p.name}: {parts}" + (f"; {p.note}" if p.note else ""))
    if not tokens_per_s:
        lines.append("- time: pass --tokens-per-s (generated tokens per second of one engine) to estimate it")
    lines.append("- tokens are upper bounds (every step, rollout and answer uses its whole budget), split over "
                 "the engines of a stage (genius.ranks: one per process, or per node with parallel: node)")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m"
