"""Transformers generation engine (CPU and CUDA): batched sampling with a KV cache.

Why not ``model.generate()``: we need per-token log-probs of the untempered distribution, stop
strings honoured per sequence, finished sequences dropped from the batch, and less work per
step. Llama-family models (Llama, Mistral without sliding window, Qwen2) decode through
``genius.engines.lean`` (KV cache allocated once, no per-step mask building or cache copies);
other architectures run ``model.forward`` with a ``DynamicCache``. Either way the n samples of
a prompt share one prefill, and rows are left-padded. On the lean path a prompt that extends a
sequence of an earlier call (the foresight search's rollouts and next steps all do) reuses its
stored keys/values and runs only its new tokens (``genius.engines.prefix_cache``). On CPU the
sampler and the fp32 decode step's non-matmul work run in C (``genius.engines.cpu_kernels``).
"""

from __future__ import annotations

import inspect
import random
import time
from collections.abc import Sequence
from typing import Any

import torch
from tqdm import tqdm

from genius.engines import cpu_kernels, lean
from genius.engines.base import Completion, EngineStats, SamplingParams, call_seed, check_prompts, stream_key
from genius.engines.memory import ModelShape, device_budget, plan_chunk
from genius.engines.options import EngineOptions
from genius.engines.prefix_cache import PrefixStore, Segment
from genius.errors import UserError
from genius.models import context_length, eos_token_ids, load_model


class HFEngine:
    name = "hf"

    def __init__(self, model: Any, tokenizer: Any, *, max_batch_size: int = 64,
                 logprob_chunk_tokens: int = 4096, compact_fraction: float = 0.125,
                 use_lean: bool | None = None, progress: bool = False, prefix_cache_bytes: int = 1 << 30,
                 memory_utilization: float | None = None):
        """``max_batch_size``: most sequences decoded at once; a call is cut into chunks of at
        most that many, fewer where their KV cache would not fit ``memory_utilization`` of the
        device's memory (``genius.engines.memory``; None: 0.9 on CUDA, 0.3 of the RAM on CPU).
        ``use_lean``: decode through the lean Llama path (default: when the model supports it).
        ``progress``: a tqdm bar over the prompt chunks of each ``generate`` call.
        ``prefix_cache_bytes``: keys/values of recent sequences kept for prompts that extend them
        (``genius.engines.prefix_cache``; lean path only); 0 turns the reuse off."""
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_size = max_batch_size
        self.logprob_chunk_tokens = logprob_chunk_tokens
        self.compact_fraction = compact_fraction
        self.use_lean = lean.supports(model) if use_lean is None else use_lean
        if self.use_lean and not lean.supports(model):
            raise UserError(f"the lean decode path does not support model type '{model.config.model_type}'")
        self.progress = progress
        self.prefix_store = PrefixStore(prefix_cache_bytes) if self.use_lean and prefix_cache_bytes > 0 else None
        self.device = next(model.parameters()).device
        self.memory_utilization = EngineOptions(gpu_memory_utilization=memory_utilization).memory_utilization(
            self.device.type)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.eos_ids = eos_token_ids(model.config, getattr(model, "generation_config", None), tokenizer)
        self.stats = EngineStats()
        self._token_text: dict[int, str] = {}

    @classmethod
    def from_spec(cls, spec: str, *, dtype: str = "auto", device: str = "auto",
                  trust_remote_code: bool = False, **kwargs: Any) -> "HFEngine":
        model, tokenizer = load_model(spec, dtype=dtype, device=device, trust_remote_code=trust_remote_code)
        return cls(model, tokenizer, **kwargs)

    @property
    def max_context(self) -> int:
        return context_length(self.model)

    # ------------------------------------------------------------------ generation
    @torch.inference_mode()
    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[list[Completion]]:
        params.validate()
        check_prompts(prompts, self.max_context, "the model's context")
        params.check_seeds(len(prompts))
        seed = call_seed(params)
        if self.prefix_store is not None:
            self.prefix_store.check_weights(lean.weights_signature(self.model.parameters()))
        results: list[list[Completion]] = [[] for _ in prompts]
        start = time.perf_counter()
        chunks = self._chunks(prompts, params)
        for idx in tqdm(chunks, desc="generate", unit="batch", disable=not self.progress or len(chunks) < 2):
            # One random stream per (prompt, sample): what a prompt gets does not depend on the
            # other prompts of the call, the batch size or when other rows finish.
            rngs = [random.Random(stream_key(params, seed, i, j)) for i in idx for j in range(params.n)]
            outs = self._generate_chunk([list(prompts[i]) for i in idx], params, rngs)
            for k, i in enumerate(idx):
                results[i] = outs[k * params.n:(k + 1) * params.n]
        self.stats.seconds += time.perf_counter() - start
        return results

    def _chunks(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[list[int]]:
        """Prompt indices per chunk: longest first (prompts of similar length, little padding),
        at most ``max_batch_size`` rows, and no more prompts than fit the memory budget."""
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        per_chunk = max(1, self.max_batch_size // params.n)
        shape = _shape(self.model)
        budget = device_budget(str(self.device), self.memory_utilization)
        new = min(params.max_new_tokens, self.max_context)
        chunks, c = [], 0
        while c < len(order):
            take = per_chunk
            if shape is not None:
                plan = plan_chunk(shape, prompt_tokens=len(prompts[order[c]]), new_tokens=new, samples=params.n,
                                  budget_bytes=budget)
                if plan.prompts < 1:
                    raise UserError(
                        f"one prompt of {len(prompts[order[c]])} tokens with {params.n} sample(s) of up to {new} "
                        f"tokens needs {plan.bytes_per_prompt / 2**30:.2f} GiB, and the engine may still use "
                        f"{budget / 2**30:.2f} GiB (engine_options.gpu_memory_utilization "
                        f"{self.memory_utilization} of the device): raise it, or lower the token budget")
                take = min(take, plan.prompts)
            chunks.append(order[c:c + take])
            c += take
        return chunks

    def _decoder(self) -> Any:
        return lean.LeanDecoder(self.model) if self.use_lean else _CacheDecoder(self.model)

    def _generate_chunk(self, prompts: list[list[int]], params: SamplingParams,
                        rngs: list[random.Random]) -> list[Completion]:
        n = params.n
        rows = len(prompts) * n
        budget = [min(params.max_new_tokens, self.max_context - len(prompts[r // n])) for r in range(rows)]
        store = self.prefix_store
        hits = [store.match(p) for p in prompts] if store is not None else [(None, 0)] * len(prompts)
        reused = [length for _, length in hits]
        input_ids, attn = self._left_pad([p[c:] for p, c in zip(prompts, reused)])
        positions = (attn.cumsum(-1) - 1).clamp(min=0) + torch.tensor(reused, device=self.device)[:, None]
        past = self._gather_past(hits) if any(reused) else None
        width = input_ids.shape[1] + (past[0].shape[4] if past is not None else 0)
        decoder = self._decoder()
        logits = decoder.prefill(input_ids, attn, positions, repeat=n, total_length=width + max(budget), past=past)
        self.stats.forward_calls += 1
        self.stats.prompt_tokens += sum(len(p) for p in prompts)
        self.stats.reused_prompt_tokens += sum(reused)
        parents: list[Segment | None] = []
        if store is not None:
            parents = [store.add(p, seg, c, decoder.prompt_kv(i, len(p) - c))
                       for i, (p, (seg, c)) in enumerate(zip(prompts, hits))]
        next_pos = positions[:, -1] + 1
        if n > 1:
            logits = logits.repeat_interleave(n, 0)
            next_pos = next_pos.repeat_interleave(n, 0)
        tokens: list[list[int]] = [[] for _ in range(rows)]
        logps: list[list[float]] = [[] for _ in range(rows)]
        finish: list[str | None] = [None] * rows
        stop_hit: list[str | None] = [None] * rows
        active = list(range(rows))  # row id of each batch position in the cache
        dead_in_batch = 0
        while True:
            uniform = None
            if params.temperature > 0:
                uniform = torch.tensor([rngs[r].random() for r in active], dtype=torch.float64)
            tok, lp = _sample(logits, params.temperature, params.top_p, uniform)
            tok_list, lp_list = tok.tolist(), lp.tolist()
            alive_mask = []
            finished_now = 0
            for b, r in enumerate(active):
                if finish[r] is not None:
                    alive_mask.append(False)
                    continue
                t = tok_list[b]
                tokens[r].append(t)
                logps[r].append(lp_list[b])
                if t in self.eos_ids:
                    finish[r] = "eos"
                elif params.stop and (hit := self._stop_hit(tokens[r], params.stop)):
                    finish[r], stop_hit[r] = "stop", hit
                elif len(tokens[r]) >= budget[r]:
                    finish[r] = "length"
                if finish[r] is not None:
                    dead_in_batch += 1
                    finished_now += 1
                alive_mask.append(finish[r] is None)
            if finished_now and params.on_finished is not None:
                params.on_finished(finished_now)
            if not any(alive_mask):
                break
            # Drop finished rows from the cache once enough of them piled up: each compaction
            # copies the cache, so doing it for every single row would cost more than it saves.
            if dead_in_batch >= max(1, int(self.compact_fraction * len(active))):
                keep = [b for b, a in enumerate(alive_mask) if a]
                self._store_rows(decoder, [b for b, a in enumerate(alive_mask) if not a], active, prompts, tokens,
                                 finish, parents, n)
                keep_t = torch.tensor(keep, device=self.device)
                decoder.select(keep_t)
                next_pos, tok = next_pos[keep_t], tok[keep_t]
                active = [active[b] for b in keep]
                dead_in_batch = 0
            logits = decoder.step(tok, next_pos)
            self.stats.forward_calls += 1
            next_pos = next_pos + 1
        self._store_rows(decoder, range(len(active)), active, prompts, tokens, finish, parents, n)
        decoder.release()
        completions = []
        for r in range(rows):
            self.stats.generated_tokens += len(tokens[r])
            completions.append(Completion(
                text=self.tokenizer.decode(tokens[r], skip_special_tokens=True),
                token_ids=tokens[r], logprobs=logps[r], finish_reason=finish[r],  # type: ignore[arg-type]
                stop_string=stop_hit[r], prompt_tokens=len(prompts[r // n])))
        return completions

    def _gather_past(self, hits: list[tuple[Segment | None, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """The stored keys/values of each prompt's reused prefix, left-padded: [layers, 2, prompts,
        kv_heads, width, head_dim] (zeros where nothing is reused) and their mask [prompts, width]."""
        width = max(length for _, length in hits)
        some = next(seg for seg, _ in hits if seg is not None).kv
        layers, _, kv_heads, _, head_dim = some.shape
        past = torch.zeros((layers, 2, len(hits), kv_heads, width, head_dim), dtype=some.dtype, device=some.device)
        mask = torch.zeros((len(hits), width), dtype=torch.long, device=some.device)
        for p, (seg, length) in enumerate(hits):
            if seg is not None:
                self.prefix_store.gather(seg, length, past[:, :, p, :, width - length:])  # type: ignore[union-attr]
                mask[p, width - length:] = 1
        return past, mask

    def _store_rows(self, decoder: Any, batch_rows: Sequence[int], active: list[int], prompts: list[list[int]],
                    tokens: list[list[int]], finish: list[str | None], parents: list[Segment | None],
                    n: int) -> None:
        """Keep the keys/values of finished rows leaving the batch, for prompts that extend them.
        A row's last token never ran through the model, so its keys stop one token short; a row
        that ended with EOS is not kept (nothing continues after the end of a response)."""
        if self.prefix_store is None:
            return
        for b in batch_rows:
            r = active[b]
            prompt, parent = prompts[r // n], parents[r // n]
            if parent is None or finish[r] == "eos" or len(tokens[r]) < 2:
                continue
            self.prefix_store.add(prompt + tokens[r][:-1], parent, len(prompt), decoder.row_kv(b, len(tokens[r]) - 1))

    def _token_str(self, t: int) -> str:
        s = self._token_text.get(t)
        if s is None:
            s = self._token_text[t] = self.tokenizer.decode([t])
        return s

    def _stop_hit(self, tokens: list[int], stops: tuple[str, ...]) -> str | None:
        """The stop string completed by the newest token, if any (stop strings may span tokens)."""
        last = self._token_str(tokens[-1])
        if "\ufffd" not in last and not any(s[-1] in last for s in stops):
            return None
        longest = max(len(s) for s in stops)
        # Enough tokens to cover the longest stop string (a token holds at least one character,
        # except byte pieces of one character, hence the margin).
        tail = self.tokenizer.decode(tokens[-(longest + 4):])
        new = len(self._token_str(tokens[-1]))
        for s in stops:
            pos = tail.rfind(s)
            if pos != -1 and pos + len(s) > len(tail) - max(new, 1) - 1:
                return s
        return None

    def _left_pad(self, seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, width - len(s):] = torch.tensor(s, dtype=torch.long)
            mask[i, width - len(s):] = 1
        return ids.to(self.device), mask.to(self.device)

    # ------------------------------------------------------------------ scoring
    @torch.inference_mode()
    def logprobs(self, prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]]) -> list[list[float]]:
        if len(prompts) != len(completions):
            raise ValueError("prompts and completions differ in length")
        results: list[list[float]] = [[] for _ in prompts]
        length = [len(p) + len(c) for p, c in zip(prompts, completions)]
        order = sorted(range(len(prompts)), key=lambda i: -length[i])
        batch: list[int] = []

        def flush() -> None:
            scored = self._logprobs_batch([prompts[j] for j in batch], [completions[j] for j in batch])
            for j, lp in zip(batch, scored):
                results[j] = lp
            batch.clear()

        for i in order:  # longest first: batch[0] sets the padded width of its batch
            if batch and (len(batch) + 1) * length[batch[0]] > self.logprob_chunk_tokens:
                flush()
            batch.append(i)
        if batch:
            flush()
        return results

    def _logprobs_batch(self, prompts: list[Sequence[int]], completions: list[Sequence[int]]) -> list[list[float]]:
        seqs = [list(p) + list(c) for p, c in zip(prompts, completions)]
        for i, s in enumerate(seqs):
            if len(s) > self.max_context:
                raise UserError(f"sequence {i} has {len(s)} tokens; the model's context is {self.max_context}")
        ids, attn = self._left_pad(seqs)
        positions = (attn.cumsum(-1) - 1).clamp(min=0)
        keep = max(len(c) for c in completions) + 1
        logits = self.model(input_ids=ids, attention_mask=attn, position_ids=positions,
                            logits_to_keep=keep).logits.float()
        self.stats.forward_calls += 1
        # Left padding right-aligns every completion: its tokens are the last len(c) positions,
        # predicted by the logits one position earlier.
        targets = ids[:, -keep + 1:] if keep > 1 else ids[:, :0]
        lp = (logits[:, :-1].gather(-1, targets[..., None])[..., 0] - logits[:, :-1].logsumexp(-1))
        out = []
        for i, c in enumerate(completions):
            out.append(lp[i, lp.shape[1] - len(c):].tolist() if len(c) else [])
        return out


class _CacheDecoder:
    """``model.forward`` with a ``DynamicCache``: any architecture transformers runs.
    Same interface as ``lean.LeanDecoder``."""

    def __init__(self, model: Any):
        from transformers import DynamicCache

        self.model = model
        self.cache = DynamicCache(config=model.config)  # filled in place by every forward
        self.attn: torch.Tensor | None = None
        # transformers 5.20 renamed past_key_values to cache (5.19 is what vLLM's CPU build admits).
        self.cache_kwarg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    def prefill(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor,
                repeat: int, total_length: int, past: Any = None) -> torch.Tensor:
        assert past is None, "this decoder keeps no keys/values across calls"
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions,
                         use_cache=True, logits_to_keep=1, **{self.cache_kwarg: self.cache})
        if repeat > 1:
            self.cache.batch_repeat_interleave(repeat)
        self.attn = attention_mask.repeat_interleave(repeat, 0) if repeat > 1 else attention_mask
        return out.logits[:, -1].float()

    def step(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        assert self.attn is not None
        self.attn = torch.cat([self.attn, self.attn.new_ones(self.attn.shape[0], 1)], dim=1)
        out = self.model(input_ids=tokens[:, None], attention_mask=self.attn, position_ids=positions[:, None],
                         use_cache=True, **{self.cache_kwarg: self.cache})
        return out.logits[:, -1].float()

    def select(self, rows: torch.Tensor) -> None:
        assert self.attn is not None
        self.cache.batch_select_indices(rows)
        self.attn = self.attn[rows]

    def release(self) -> None:
        self.cache = None  # type: ignore[assignment]
        self.attn = None


def _shape(model: Any) -> ModelShape | None:
    """The model's shape for the memory plan; None for configs that do not name it (their
    chunks are bounded by ``max_batch_size`` only)."""
    try:
        return ModelShape.from_config(model.config, next(model.parameters()).element_size())
    except (AttributeError, TypeError):
        return None


def _sample(logits: torch.Tensor, temperature: float, top_p: float, uniform: torch.Tensor | None,
            kernel: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Next token per row and its log-probability under the untempered distribution (log
    softmax(logits)): argmax at temperature 0, else nucleus sampling of softmax(logits / T)
    by inverse CDF: row b takes the first token whose cumulative probability exceeds
    ``uniform[b]`` (in [0, 1)) times the row's total mass.

    Top-p keeps the smallest set of most likely tokens whose mass reaches ``top_p`` (the most
    likely token always stays). Inverse-CDF sampling needs one uniform per row, which lets every
    row have its own random stream at no cost (``torch.multinomial`` draws from one generator
    for the batch and measured ~10x slower than this at 64 x 49k). Without top-p, fp32 logits on
    CPU go through ``cpu_kernels.sample`` (the same rule in one pass; ``kernel``: force it on or
    off, default where it is built)."""
    if temperature > 0 and top_p >= 1.0 and logits.device.type == "cpu" and logits.dtype == torch.float32:
        if kernel or (kernel is None and cpu_kernels.available()):
            assert uniform is not None
            return cpu_kernels.sample(logits, temperature, uniform)
    if temperature == 0:
        tok = logits.argmax(-1)
    else:
        tok = _inverse_cdf(logits, temperature, top_p, uniform)
    return tok, logits.gather(-1, tok[:, None])[:, 0] - logits.logsumexp(-1)


def _inverse_cdf(logits: torch.Tensor, temperature: float, top_p: float,
                 uniform: torch.Tensor | None) -> torch.Tensor:
    assert uniform is not None
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    order = None
    if top_p < 1.0:
        probs, order = probs.sort(dim=-1, descending=True)
        drop = (probs.cumsum(-1) - probs) >= top_p
        probs = probs.masked_fill(drop, 0.0)
    cdf = probs.cumsum(-1)
    total = cdf[:, -1:]
    target = (uniform.to(cdf.device)[:, None] * total.double()).to(cdf.dtype)
    # Kept strictly below the total (rounding may reach it): the first cdf entry above the target
    # then always rises there, i.e. is a token with mass, never a zero-mass one after the last.
    target = torch.minimum(target, torch.nextafter(total, torch.zeros_like(total)))
    idx = torch.searchsorted(cdf, target, right=True)
    if order is not None:
        idx = order.gather(-1, idx)
    return idx[:, 0]
