"""Keys/values of recently seen sequences, so that a prompt extending one of them skips its prefill.

The foresight search sends prompts that extend what the engine just generated: every rollout's
prompt is its candidate's prompt plus the candidate, every step's prompt the last step's prompt
plus the chosen candidate, and all of them start with the same chat preamble. Recomputing those
prefixes was 43% of ``genius sample``'s time on a CPU. vLLM's automatic prefix caching does the
same job; this is the small version of it for ``HFEngine``'s lean decode path.

Sequences are kept as a tree of segments: a segment holds the keys/values of its own tokens and
points at the segment it extends (a prompt's samples share their prompt's segment, so its keys
are stored once). A segment is found by a key at every 16-token block boundary it covers and at
its end: a chained hash of the tokens up to there, checked against the tokens themselves on a hit.
Least recently used leaves are evicted when the store passes ``max_bytes``; the store empties
itself when the model's weights change (new storage or an in-place update).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
import torch

BLOCK = 16
"""Prefixes are found at multiples of this many tokens (and at each stored sequence's end)."""


class Segment:
    """Keys/values ``kv`` [layers, 2, kv_heads, len(tokens), head_dim] of ``tokens``, which follow
    the first ``start`` tokens of ``parent``'s sequence."""

    __slots__ = ("tokens", "start", "parent", "kv", "children", "keys")

    def __init__(self, tokens: tuple[int, ...], start: int, parent: Segment | None, kv: torch.Tensor):
        self.tokens, self.start, self.parent, self.kv = tokens, start, parent, kv
        self.children = 0  # live segments that extend this one
        self.keys: list[tuple[int, int]] = []

    @property
    def end(self) -> int:
        return self.start + len(self.tokens)

    def chain(self) -> list[Segment]:
        """This segment and its ancestors, root first."""
        out, seg = [], self
        while seg is not None:
            out.append(seg)
            seg = seg.parent
        return out[::-1]


class PrefixStore:
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.bytes = 0
        self._index: dict[tuple[int, int], Segment] = {}
        self._lru: OrderedDict[int, Segment] = OrderedDict()  # id -> segment, least recent first
        self._signature: tuple | None = None

    def check_weights(self, signature: tuple) -> None:
        """Empty the store if the weights' signature (``lean.weights_signature``) changed since the
        keys/values were made."""
        if signature != self._signature:
            self.clear()
            self._signature = signature

    def clear(self) -> None:
        self._index.clear()
        self._lru.clear()
        self.bytes = 0

    def match(self, tokens: Sequence[int]) -> tuple[Segment | None, int]:
        """The longest stored prefix of ``tokens`` shorter than ``tokens`` (the last prompt token
        must run to give the next token's logits): (segment that holds its last token, length)."""
        hashes = _block_hashes(tokens)
        last = len(tokens) - 1
        # Longest first; keys exist only at block boundaries and stored ends, so the first hit
        # is the longest stored prefix. (The search's prompts hit at once: each ends where a
        # stored sequence ended, or one token after it, as a sample's last token never ran.)
        for length in range(last + 1, 0, -1):
            seg = self._index.get(_key(hashes, tokens, length))
            if seg is None or not _same_tokens(seg, tokens, length):
                continue
            use = min(length, last)
            if use == 0:
                break
            while seg.start >= use:  # the prefix ends inside an ancestor
                seg = seg.parent
            for s in seg.chain():
                self._lru.move_to_end(id(s))
            return seg, use
        return None, 0

    def gather(self, seg: Segment, length: int, out: torch.Tensor) -> None:
        """Copy the keys/values of the first ``length`` tokens of ``seg``'s sequence into ``out``
        [layers, 2, kv_heads, length, head_dim]."""
        end = length
        node: Segment | None = seg
        while end > 0:
            assert node is not None and node.start < end <= node.end
            out[:, :, :, node.start:end] = node.kv[:, :, :, : end - node.start]
            end, node = node.start, node.parent

    def add(self, sequence: Sequence[int], parent: Segment | None, start: int,
            kv: torch.Tensor) -> Segment | None:
        """Store ``kv`` for ``sequence[start:]``, which extends the first ``start`` tokens of
        ``parent``'s sequence (None when ``start`` is 0). A sequence already stored is kept once;
        nothing is stored (None) when ``parent`` was evicted meanwhile."""
        if parent is not None and self._lru.get(id(parent)) is not parent:
            return None
        hashes = _block_hashes(sequence)
        end_key = _key(hashes, sequence, len(sequence))
        existing = self._index.get(end_key)
        if existing is not None and _same_tokens(existing, sequence, len(sequence)):
            return existing
        seg = Segment(tuple(sequence[start:]), start, parent, kv)
        for length in [*range((start // BLOCK + 1) * BLOCK, len(sequence), BLOCK), len(sequence)]:
            key = _key(hashes, sequence, length)
            if key not in self._index:
                self._index[key] = seg
                seg.keys.append(key)
        if parent is not None:
            parent.children += 1
        self._lru[id(seg)] = seg
        self.bytes += kv.numel() * kv.element_size()
        self._evict()
        return seg

    def _evict(self) -> None:
        while self.bytes > self.max_bytes and self._lru:
            # The least recently used leaf: a parent goes only after the sequences extending it.
            victim = next((s for s in self._lru.values() if not s.children), None)
            if victim is None:
                return
            self._drop(victim)

    def _drop(self, seg: Segment) -> None:
        for key in seg.keys:
            if self._index.get(key) is seg:
                del self._index[key]
        if seg.parent is not None:
            seg.parent.children -= 1
        del self._lru[id(seg)]
        self.bytes -= seg.kv.numel() * seg.kv.element_size()


def _block_hashes(tokens: Sequence[int]) -> list[int]:
    """Chained hash of the first b full blocks, for b = 0 .. len(tokens) // BLOCK."""
    hashes = [0]
    for b in range(len(tokens) // BLOCK):
        hashes.append(hash((hashes[-1], tuple(tokens[b * BLOCK:(b + 1) * BLOCK]))))
    return hashes


def _key(hashes: list[int], tokens: Sequence[int], length: int) -> tuple[int, int]:
    full = length // BLOCK
    return hash((hashes[full], tuple(tokens[full * BLOCK:length]))), length


def _same_tokens(seg: Segment, tokens: Sequence[int], length: int) -> bool:
    """Whether ``seg``'s sequence starts with ``tokens[:length]`` (a hash hit is checked)."""
    end = length
    node: Segment | None = seg
    while end > 0:
        if node is None or not node.start < end <= node.end:
            return False
        if node.tokens[: end - node.start] != tuple(tokens[node.start:end]):
            return False
        end, node = node.start, node.parent
    return True
