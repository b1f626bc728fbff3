"""Prompt presets: the paper's evaluation protocol, the reference code's, and zero-shot.

Every preset uses the paper's system prompt "Please solve the following problem step by step."
and, after the problem, an answer instruction that fits the answer type ("The answer is: X",
``\\boxed{}`` for math, Yes/No). Few-shot exemplars are earlier chat turns (user problem,
assistant solution ending in the instructed answer form).

- ``paper``: GSM8K and MATH few-shot. The paper says "4/8-shot" without pairing the numbers with
  the benchmarks; we read it as 4-shot GSM8K and use the 4 Minerva exemplars for MATH (the only
  standard MATH set), zero-shot elsewhere.
- ``code``: the reference code, 8-shot GSM8K and 4-shot MATH.
- ``zero-shot``: no exemplars anywhere.

Code tasks (answer type ``code``) get no answer instruction: their prompt (MBPP's 3 solved
tasks, HumanEval's signature, LiveCodeBench's template and system message) says how to answer.
Judged tasks (Arena-Hard, AlpacaEval, WildBench) are asked as their benchmarks ask them: the
question alone as the user message (after the conversation before it, for WildBench), no system
prompt, no shots, no instruction, in every preset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from genius.errors import UserError
from genius.evaluation.answers import answer_spec
from genius.evaluation.tasks.base import Item, Task

SYSTEM_PROMPT = "Please solve the following problem step by step."


@dataclass(frozen=True)
class Preset:
    name: str
    system: str = SYSTEM_PROMPT
    shots: dict[str, int] = field(default_factory=dict)
    """Exemplars per few-shot pool ("gsm8k", "math"); pools not listed are zero-shot."""


PRESETS = {
    "paper": Preset("paper", shots={"gsm8k": 4, "math": 4}),
    "code": Preset("code", shots={"gsm8k": 8, "math": 4}),
    "zero-shot": Preset("zero-shot"),
}

# Wei et al. (2022) chain-of-thought exemplars for GSM8K, answer line in the instructed form.
GSM8K_SHOTS = (
    ("There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, "
     "there will be 21 trees. How many trees did the grove workers plant today?",
     "There are 15 trees originally. Then there were 21 trees after some more were planted. "
     "So there must have been 21 - 15 = 6.\nThe answer is: 6"),
    ("If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
     "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5.\nThe answer is: 5"),
    ("Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
     "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. "
     "After eating 35, they had 74 - 35 = 39.\nThe answer is: 39"),
    ("Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. "
     "How many lollipops did Jason give to Denny?",
     "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. "
     "So he gave Denny 20 - 12 = 8.\nThe answer is: 8"),
    ("Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have now?",
     "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. "
     "5 + 4 = 9.\nThe answer is: 9"),
    ("There were nine computers in the server room. Five more computers were installed each day, from monday "
     "to thursday. How many computers are now in the server room?",
     "There were originally 9 computers. For each of 4 days, 5 more computers were added. "
     "So 5 * 4 = 20 computers were added. 9 + 20 is 29.\nThe answer is: 29"),
    ("Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. "
     "How many golf balls did he have at the end of wednesday?",
     "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. "
     "After losing 2 more, he had 35 - 2 = 33 golf balls.\nThe answer is: 33"),
    ("Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
     "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. "
     "So she has 23 - 15 dollars left. 23 - 15 is 8.\nThe answer is: 8"),
)

# Lewkowycz et al. (2022, Minerva) exemplars for MATH, final answers boxed.
MATH_SHOTS = (
    ("Find the domain of the expression $\\frac{\\sqrt{x-2}}{\\sqrt{5-x}}$.",
     "The expressions inside each square root must be non-negative. Therefore, $x-2 \\ge 0$, so $x\\ge2$, and "
     "$5 - x \\ge 0$, so $x \\le 5$. Also, the denominator cannot be equal to zero, so $5-x>0$, which gives "
     "$x<5$. Therefore, the domain of the expression is $\\boxed{[2,5)}$."),
    ("If $\\det \\mathbf{A} = 2$ and $\\det \\mathbf{B} = 12,$ then find $\\det (\\mathbf{A} \\mathbf{B}).$",
     "We have that $\\det (\\mathbf{A} \\mathbf{B}) = (\\det \\mathbf{A})(\\det \\mathbf{B}) = (2)(12) = "
     "\\boxed{24}.$"),
    ("Terrell usually lifts two 20-pound weights 12 times. If he uses two 15-pound weights instead, how many "
     "times must Terrell lift them in order to lift the same total weight?",
     "If Terrell lifts two 20-pound weights 12 times, he lifts a total of $2\\cdot 12\\cdot20=480$ pounds of "
     "weight. If he lifts two 15-pound weights instead for $n$ times, he will lift a total of "
     "$2\\cdot15\\cdot n=30n$ pounds of weight. Equating this to 480 pounds, we can solve for $n$: "
     "$30n=480$, so $n=480/30=\\boxed{16}$."),
    ("If the system of equations\n\\begin{align*}\n6x-4y&=a,\\\\\n6y-9x &=b.\n\\end{align*}has a solution "
     "$(x, y)$ where $x$ and $y$ are both nonzero, find $\\frac{a}{b},$ assuming $b$ is nonzero.",
     "If we multiply the first equation by $-\\frac{3}{2}$, we obtain $$6y-9x=-\\frac{3}{2}a.$$ Since we also "
     "know that $6y-9x=b$, we have $$-\\frac{3}{2}a=b\\Rightarrow\\frac{a}{b}=\\boxed{-\\frac{2}{3}}.$$"),
)

SHOT_POOLS = {"gsm8k": GSM8K_SHOTS, "math": MATH_SHOTS}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise UserError(f"unknown prompt preset '{name}': expected one of {', '.join(PRESETS)}") from None


def answer_instruction(task: Task, item: Item) -> str:
    """The task-specific answer instruction appended to every problem: the task's own, else its
    answer type's (genius.evaluation.answers.ANSWER_TYPES)."""
    if task.instruction:
        return task.instruction
    return answer_spec(task.answer_type).instruction(item.labels)


def _with_instruction(question: str, instruction: str) -> str:
    return f"{question}\n\n{instruction}" if instruction else question


def build_messages(task: Task, item: Item, preset: Preset) -> list[dict[str, str]]:
    """System prompt, few-shot turns (if the preset gives the task's pool any), then the problem;
    a judged task's question alone, after the turns before it if any (the judge compares it with
    answers written that way)."""
    if task.answer_type == "judged":  # with the conversation before it, when there is one (WildBench)
        return [*item.meta.get("history", ()), {"role": "user", "content": item.question}]
    system = task.system or preset.system
    messages = [{"role": "system", "content": system}] if system else []
    instruction = answer_instruction(task, item)
    shots = SHOT_POOLS.get(task.few_shot or "", ())[: preset.shots.get(task.few_shot or "", 0)]
    for question, solution in shots:
        messages.append({"role": "user", "content": _with_instruction(question, instruction)})
        messages.append({"role": "assistant", "content": solution})
    messages.append({"role": "user", "content": _with_instruction(item.question, instruction)})
    return messages
