"""CPU kernels for decoding (``cpu_kernels.c``): built once per machine, loaded with ctypes.

What they do (the C file says why each is written by hand):
- ``decode_attention``: a decode step's attention over each prompt's shared keys and each row's
  own keys, 2-3x faster than the same math as torch matmuls;
- ``rope_qk``, ``add_rms_norm``, ``silu_mul``: the glue between a layer's matmuls, so that
  ``lean.LeanDecoder`` runs a fp32 decode step on CPU as matmuls plus 5 kernel calls per layer;
- ``sample``: the engine's sampler without top-p, each row's token and its log-probability in
  one pass over the logits (3 ms at 64 x 49k where torch's ten passes take 15).

Built the first time they are needed with the system C compiler (``$CC``, else ``cc``):
``-O3 -march=native -fopenmp -shared`` (without ``-march=native`` where the compiler rejects
it), about a second, into ``<genius cache>/kernels/`` under a name that hashes the source, the
compiler, the flags and this CPU, so a changed source or another machine builds anew. The build
goes to a temporary file renamed into place (concurrent processes never load a half-written
library). Without a working compiler with OpenMP, decoding keeps its torch ops (same results,
slower) and one line on stderr says so; ``GENIUS_CPU_KERNEL=0`` turns the kernels off.

Every call passes ``torch.get_num_threads()`` as its OpenMP thread count: the library may link
another OpenMP runtime than torch's, whose default would be every core.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from genius.models import cache_root

SOURCE = Path(__file__).with_name("cpu_kernels.c")
FLAGS = ("-O3", "-fno-math-errno", "-fopenmp", "-shared", "-fPIC")
NATIVE = "-march=native"  # tried first; some compilers (older Clang on ARM) reject it


def available() -> bool:
    return _library() is not None


def decode_attention(q: torch.Tensor, prefix_k: torch.Tensor, prefix_v: torch.Tensor, prefix_bias: torch.Tensor,
                     cache_k: torch.Tensor, cache_v: torch.Tensor, length: int, row_prompt: torch.Tensor,
                     scale: float) -> torch.Tensor:
    """Attention of one new token per row: ``q`` [rows, kv_heads, group, head_dim] (a row's heads
    contiguous, rows at any stride) against its prompt's keys ``prefix_k``/``prefix_v`` [prompts,
    kv_heads, width, head_dim] (``prefix_bias`` [prompts, width]: 0, or -inf for padding) and its
    own first ``length`` keys in ``cache_k``/``cache_v`` [rows, kv_heads, capacity, head_dim].
    ``row_prompt`` [rows] (int64): the prompt of each row, trusted to lie in [0, prompts).
    Returns [rows, kv_heads * group * head_dim]. All fp32 on CPU; the prefix and cache tensors
    contiguous (checked, as are the shapes)."""
    rows, kv, group, dim = q.shape
    lib = _check(q, prefix_k, prefix_v, prefix_bias, cache_k, cache_v,
                 contiguous=(prefix_k, prefix_v, prefix_bias, cache_k, cache_v))
    prompts, width = prefix_bias.shape
    if (q.stride()[1:] != (group * dim, dim, 1) or prefix_k.shape != (prompts, kv, width, dim)
            or prefix_v.shape != prefix_k.shape or cache_k.shape[:2] != (rows, kv) or cache_k.shape[3] != dim
            or cache_v.shape != cache_k.shape or not 1 <= length <= cache_k.shape[2]
            or row_prompt.shape != (rows,) or row_prompt.dtype != torch.int64 or not row_prompt.is_contiguous()):
        raise ValueError("decode_attention: the shapes, strides or length do not fit together")
    out = q.new_empty((rows, kv * group * dim))
    status = lib.decode_attention(
        q.data_ptr(), q.stride(0), prefix_k.data_ptr(), prefix_v.data_ptr(), prefix_bias.data_ptr(),
        cache_k.data_ptr(), cache_v.data_ptr(), row_prompt.data_ptr(), out.data_ptr(),
        rows, kv, group, dim, width, cache_k.shape[2], length, scale, torch.get_num_threads())
    if status == 1:
        raise ValueError(f"decode_attention handles head_dim multiple of 8 up to 256, not {dim}")
    if status == 2:
        raise MemoryError("decode_attention: out of memory for its score buffer")
    return out


def sample(logits: torch.Tensor, temperature: float, uniform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row of fp32 ``logits`` [rows, vocab] (CPU): the first token whose cumulative probability
    under softmax(logits / temperature) exceeds ``uniform[row]`` (in [0, 1)) times the row's total,
    and that token's log softmax(logits) (before temperature). Returns (tokens int64 [rows],
    log-probs float64 [rows])."""
    lib = _check(logits)
    if logits.dim() != 2 or temperature <= 0 or uniform.shape != logits.shape[:1]:
        raise ValueError("sample takes [rows, vocab] logits, one uniform per row and a temperature > 0")
    if logits.stride(1) != 1:  # e.g. a transposed view out of lean.linear (small vocabularies)
        logits = logits.contiguous()
    rows, vocab = logits.shape
    uniform = uniform.to(torch.float64).contiguous()
    tokens = torch.empty(rows, dtype=torch.int64)
    logprobs = torch.empty(rows, dtype=torch.float64)
    status = lib.sample_rows(logits.data_ptr(), logits.stride(0), rows, vocab, 1.0 / temperature,
                             uniform.data_ptr(), tokens.data_ptr(), logprobs.data_ptr(), torch.get_num_threads())
    if status == 2:
        raise MemoryError("sample: out of memory")
    if status == 3:
        raise ValueError("sample: a row of logits has no finite value (NaN or all -inf)")
    return tokens, logprobs


def rope_qk(qkv: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor, heads: int, kv_heads: int,
            cache_k: torch.Tensor, cache_v: torch.Tensor, position: int) -> torch.Tensor:
    """From the fused projection ``qkv`` [rows, (heads + 2 kv_heads) * head_dim] (any 2-D
    strides): the rotated queries [rows, heads, head_dim]; the rotated keys and the values are
    written into ``cache_k``/``cache_v`` [rows, kv_heads, capacity, head_dim] at ``position``.
    ``cos``/``signed_sin`` [rows, head_dim]: signed_sin = (-sin1, sin2) over the two halves."""
    rows, dim = cos.shape
    lib = _check(qkv, cos, signed_sin, cache_k, cache_v, contiguous=(cos, signed_sin, cache_k, cache_v))
    if (qkv.shape != (rows, (heads + 2 * kv_heads) * dim) or signed_sin.shape != cos.shape or dim > 256 or dim % 2
            or cache_k.shape[:2] != (rows, kv_heads) or cache_k.shape[3] != dim or cache_v.shape != cache_k.shape
            or not 0 <= position < cache_k.shape[2]):
        raise ValueError("rope_qk: qkv, cos, the caches or the position do not fit together")
    q = qkv.new_empty((rows, heads, dim))
    lib.rope_qk(qkv.data_ptr(), qkv.stride(0), qkv.stride(1), cos.data_ptr(), signed_sin.data_ptr(), rows, heads,
                kv_heads, dim, q.data_ptr(), cache_k.data_ptr(), cache_v.data_ptr(), cache_k.shape[2], position,
                torch.get_num_threads())
    return q


def add_rms_norm(hidden: torch.Tensor, delta: torch.Tensor | None, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """``hidden`` [rows, dim] (contiguous) += ``delta`` (any 2-D strides; None: nothing added), in
    place; returns the Llama RMSNorm of the result, ``hidden * rsqrt(mean(hidden^2) + eps) * weight``."""
    lib = _check(hidden, weight, *(() if delta is None else (delta,)), contiguous=(hidden, weight))
    rows, dim = hidden.shape
    if (delta is not None and delta.shape != hidden.shape) or weight.shape != (dim,):
        raise ValueError("add_rms_norm: hidden, delta and weight do not fit together")
    out = torch.empty_like(hidden)
    lib.add_rms_norm(hidden.data_ptr(), None if delta is None else delta.data_ptr(),
                     0 if delta is None else delta.stride(0), 0 if delta is None else delta.stride(1),
                     weight.data_ptr(), out.data_ptr(), rows, dim, eps, torch.get_num_threads())
    return out


def silu_mul(gate_up: torch.Tensor) -> torch.Tensor:
    """``silu(gate) * up`` of ``gate_up`` [rows, 2 * inter] (gate then up), in gate_up's layout
    (row-major, or transposed as ``lean.linear`` returns it): [rows, inter]."""
    lib = _check(gate_up)
    rows, inter = gate_up.shape[0], gate_up.shape[1] // 2
    if gate_up.stride(0) == 1 and rows > 1:
        out = torch.empty_strided((rows, inter), (1, rows), dtype=gate_up.dtype)
    else:
        gate_up = gate_up if gate_up.stride(1) == 1 else gate_up.contiguous()
        out = gate_up.new_empty((rows, inter))
    lib.silu_mul(gate_up.data_ptr(), gate_up.stride(0), gate_up.stride(1), rows, inter, out.data_ptr(), out.stride(0),
                 out.stride(1), torch.get_num_threads())
    return out


def _check(*tensors: torch.Tensor, contiguous: tuple[torch.Tensor, ...] = ()) -> Any:
    """The loaded library, once the tensors are fp32 on CPU and ``contiguous`` are contiguous."""
    lib = _library()
    if lib is None:
        raise RuntimeError("the CPU kernels are not available")
    if any(t.dtype != torch.float32 or t.device.type != "cpu" for t in tensors):
        raise ValueError("the CPU kernels take fp32 CPU tensors")
    if not all(t.is_contiguous() for t in contiguous):
        raise ValueError("the CPU kernels need contiguous hidden states, weights, prefixes and caches")
    return lib


def supports(head_dim: int, dtype: torch.dtype, device: torch.device) -> bool:
    """Whether the kernel can run attention of this shape (and was built on this machine)."""
    return device.type == "cpu" and dtype == torch.float32 and head_dim % 8 == 0 and head_dim <= 256 and available()


@functools.lru_cache(maxsize=1)
def _library() -> Any:
    if os.environ.get("GENIUS_CPU_KERNEL", "1") == "0":
        return None
    try:
        lib = ctypes.CDLL(str(_build()))
    except (OSError, subprocess.SubprocessError, RuntimeError) as e:
        print(f"genius: CPU kernels unavailable ({e}); decoding with torch ops (slower)",
              file=sys.stderr)
        return None
    lib.decode_attention.restype = ctypes.c_int
    lib.decode_attention.argtypes = ([ctypes.c_void_p, ctypes.c_int64] + [ctypes.c_void_p] * 7
                                     + [ctypes.c_int64] * 7 + [ctypes.c_float, ctypes.c_int])
    lib.rope_qk.restype = lib.add_rms_norm.restype = lib.silu_mul.restype = None
    lib.rope_qk.argtypes = ([ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64] + [ctypes.c_void_p] * 2
                            + [ctypes.c_int64] * 4 + [ctypes.c_void_p] * 3 + [ctypes.c_int64] * 2 + [ctypes.c_int])
    lib.add_rms_norm.argtypes = ([ctypes.c_void_p] * 2 + [ctypes.c_int64] * 2 + [ctypes.c_void_p] * 2
                                 + [ctypes.c_int64] * 2 + [ctypes.c_float, ctypes.c_int])
    lib.silu_mul.argtypes = ([ctypes.c_void_p] + [ctypes.c_int64] * 4 + [ctypes.c_void_p] + [ctypes.c_int64] * 2
                             + [ctypes.c_int])
    lib.sample_rows.restype = ctypes.c_int
    lib.sample_rows.argtypes = ([ctypes.c_void_p] + [ctypes.c_int64] * 3 + [ctypes.c_float]
                                + [ctypes.c_void_p] * 3 + [ctypes.c_int])
    return lib


def _build() -> Path:
    """The built library for this source, compiler and CPU: built now if not yet in the cache (the
    builds of earlier sources or compilers in that folder are removed)."""
    command = shlex.split(os.environ.get("CC") or "cc")  # CC may carry arguments ("ccache gcc")
    compiler = shutil.which(command[0]) if command else None
    if compiler is None:
        raise RuntimeError("no C compiler found (set CC)")
    command[0] = compiler
    version = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60).stdout
    key = hashlib.sha256("\0".join([SOURCE.read_text(), *command, version, *FLAGS, NATIVE, platform.machine(),
                                    _cpu_flags()]).encode()).hexdigest()[:16]
    folder = cache_root() / "kernels"
    target = folder / f"cpu_kernels-{key}.so"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".so.tmp")
    os.close(fd)
    try:
        for flags in ((*FLAGS, NATIVE), FLAGS):
            done = subprocess.run([*command, *flags, str(SOURCE), "-o", tmp, "-lm"], capture_output=True, text=True,
                                  timeout=300)
            if done.returncode == 0:
                break
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise RuntimeError(f"{Path(compiler).name} failed: {last}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    for old in folder.glob("cpu_kernels-*.so"):
        if old != target:
            old.unlink(missing_ok=True)  # a process that loaded it keeps its mapping
    return target


def _cpu_flags() -> str:
    """What -march=native compiles for: the CPU's feature flags (Linux), else the processor name."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()
