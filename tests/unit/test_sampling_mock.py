"""A scripted engine with known log-probs for the sampling tests (imported by the other files).

The mock reads the response written so far out of each prompt (byte-level ChatML tokenizer, so
text and token ids map one to one) and answers with scripted steps:

- candidate phase (a call whose stop strings hold "\\n"): the j-th sample of a beam with path
  ``P`` (its lines so far, e.g. "a0") is the step ``P + letter(depth) + str(i) + "\\n"``, where i
  counts the samples of identical prompts within the call (so the M root copies give i = 0..M*N-1).
  Every step token has log-prob S[label]. Labels in ``eos`` end with the EOS token instead of "\\n";
  labels in ``blank`` first come out as a whitespace-only line (i + 1 spaces and "\\n", log-prob
  BLANK_LP per token) and give their label when continued.
- rollout phase (no "\\n" stop): " then <label> ends." + EOS, every token with log-prob F[label].
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from genius.engines.base import Completion, SamplingParams
from genius.tiny import byte_tokenizer

BLANK_LP = -1.0
ASSISTANT = "<|im_start|>assistant\n"


@dataclass
class MockEngine:
    S: dict[str, float]
    F: dict[str, float] = field(default_factory=dict)
    eos: set[str] = field(default_factory=set)
    blank: set[str] = field(default_factory=set)
    prefix: str = "The reasoning steps are:\n\n"
    max_context: int = 4096
    calls: list[tuple[str, int, int, SamplingParams]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tokenizer = byte_tokenizer()
        self.eos_id = self.tokenizer.eos_token_id

    def response_so_far(self, prompt: list[int]) -> str:
        text = self.tokenizer.decode(prompt, skip_special_tokens=False)
        body = text.rsplit(ASSISTANT, 1)[1]
        assert body.startswith(self.prefix)
        return body[len(self.prefix):]

    def _completion(self, text: str, lp: float, eos: bool, stop: str | None) -> Completion:
        ids = self.tokenizer.encode(text, add_special_tokens=False) + ([self.eos_id] if eos else [])
        return Completion(text=text, token_ids=ids, logprobs=[lp] * len(ids),
                          finish_reason="eos" if eos else "stop", stop_string=stop)

    def generate(self, prompts, params: SamplingParams) -> list[list[Completion]]:
        phase = "step" if "\n" in params.stop else "rollout"
        self.calls.append((phase, len(prompts), params.n, params))
        seen: Counter = Counter()
        out = []
        for p in prompts:
            so_far = self.response_so_far(list(p))
            lines = so_far.split("\n")
            path = [ln for ln in lines if ln.strip()]
            group = []
            for _ in range(params.n):
                if phase == "rollout":
                    label = path[-1]
                    group.append(self._completion(f" then {label} ends.", self.F[label], True, None))
                    continue
                tail = lines[-2] if len(lines) >= 2 else ""
                if so_far.endswith("\n") and tail and not tail.strip():  # continuing a blank line
                    i = len(tail) - 1
                    parent = path
                else:
                    i = seen[tuple(p)]
                    seen[tuple(p)] += 1
                    parent = path
                label = (parent[-1] if parent else "") + "abcdefgh"[len(parent)] + str(i)
                if label in self.blank and not (tail and not tail.strip() and so_far.endswith("\n")):
                    group.append(self._completion(" " * (i + 1) + "\n", BLANK_LP, False, "\n"))
                elif label in self.eos:
                    group.append(self._completion(label, self.S[label], True, None))
                else:
                    group.append(self._completion(label + "\n", self.S[label], False, "\n"))
            out.append(group)
        return out

    def logprobs(self, prompts, completions):  # pragma: no cover - not used by the sampler
        raise NotImplementedError


def test_mock_scripts_steps_and_rollouts() -> None:
    """The mock itself: root copies get distinct labels, rollouts read the last step's label."""
    eng = MockEngine(S={"a0": -1.0, "a1": -2.0, "a2": -3.0, "a3": -4.0}, F={"a1": -0.5})
    from genius.models import chat_prompt_ids

    root = chat_prompt_ids(eng.tokenizer, [{"role": "user", "content": "q"}], eng.prefix)
    outs = eng.generate([root, root], SamplingParams(n=2, stop=("\n",)))
    assert [c.text for g in outs for c in g] == ["a0\n", "a1\n", "a2\n", "a3\n"]
    assert outs[1][1].logprobs == [-4.0] * 3
    [[r]] = eng.generate([root + outs[0][1].token_ids], SamplingParams(n=1))
    assert r.text == " then a1 ends." and r.finish_reason == "eos" and r.mean_logprob == -0.5
