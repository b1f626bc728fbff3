"""Answer extraction and correctness: pure functions on strings (no model, no I/O).

``genius.evaluation.answers.ANSWER_TYPES`` is the one registry of answer types built on these:
for each, how a problem asks for the answer (the instruction), how it is read from a response and
how two answers compare. Tasks, prompts and the synthetic problems all go through it. The types:
- ``number`` (GSM8K): last ``\\boxed{}``, else the last "answer is", else the last number;
  numbers compare as exact rationals (commas, signs, decimals, leading zeros, ``$``/``%``).
- ``math`` (MATH, AIME): same order, but the answer is LaTeX; it is compared numerically when
  both sides are plain numbers, else by a normalised string, else through ``math_verify``
  (LaTeX-aware, symbolic). Any failure inside math_verify counts as "not equal", never raises.
- ``choice`` (ReClor, LogiQA, GPQA, ARC): the option label after the last "answer is" /
  "Answer:", else a marked label such as "(B)" or "b)", else the first standalone label.
- ``yesno`` (StrategyQA): Yes/No (True/False) after the last "answer is", else the first one.
- ``name`` (the synthetic ordering problems): one of the item's names, the first named after the
  last "answer is", else the last named anywhere (whole words).
- ``text``: the first line after the last "answer is", its final period dropped.
- ``code`` (MBPP, HumanEval; LiveCodeBench takes the last block, as its runner does): the
  program: the first fenced code block, else the text between ``[BEGIN]`` and ``[DONE]`` (the
  MBPP prompt's markers), else the whole response when it looks like code. No answer
  instruction: the task's prompt says how to answer. Whether it is right is decided by running
  it (the task's check), not by comparing text.
- ``judged`` (Arena-Hard, AlpacaEval, WildBench): the whole response, judged by an LLM judge
  against a reference answer or a checklist (genius.evaluation.judge). No answer instruction.

Numbers compare as numbers, math as above; the other types compare case-insensitively.

Every extractor returns ``None`` when the response holds no answer; that counts as wrong.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from fractions import Fraction

# -------------------------------------------------------------------------------- boxed


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``), braces balanced.

    ``\\boxed{\\frac{1}{2}}`` -> ``\\frac{1}{2}``. An unclosed last box is skipped in favour of
    an earlier closed one; ``\\boxed 5`` (no braces) gives ``5``.
    """
    for m in reversed(list(re.finditer(r"\\(?:boxed|fbox)\s*", text))):
        rest = text[m.end():]
        if not rest.startswith("{"):
            bare = re.match(r"([^\s$]+)", rest)
            if bare:
                return bare.group(1)
            continue
        depth = 0
        for i, ch in enumerate(rest):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return rest[1:i].strip()
    return None


# -------------------------------------------------------------------------------- "answer is"

# "answer" alone is not a marker ("To answer this, ..."): it must be followed by is / : / =.
_ANSWER_ANCHOR = re.compile(
    r"(?:final\s+answer|correct\s+(?:answer|option|choice)|answer)\**\s*"
    r"(?:(?:is|would\s+be|will\s+be)\b\s*\**\s*[:：]?|[:：=])",
    re.IGNORECASE,
)


def after_answer_is(text: str) -> str | None:
    """Text after the last answer marker ("The answer is:", "Answer:", "final answer is")."""
    matches = list(_ANSWER_ANCHOR.finditer(text))
    for m in reversed(matches):
        rest = text[m.end():].strip()
        if rest:
            return rest
    return None


def _first_line_clause(text: str) -> str:
    """The answer clause: up to the end of the line, or a sentence end that is not a decimal point."""
    line = text.split("\n", 1)[0]
    m = re.search(r"(?<!\d)\.(?!\d)|\.\s|\.$", line)
    return line[: m.start()] if m else line


# -------------------------------------------------------------------------------- numbers

_NUMBER = re.compile(r"(?<![\w.])[-−–+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+)?(?![\d])|"
                     r"(?<![\w.])[-−–+]?\.\d+")


def find_numbers(text: str) -> list[str]:
    """Every number in the text, as written (commas, signs, decimals and ``a/b`` kept)."""
    return [m.group(0) for m in _NUMBER.finditer(text)]


def parse_number(s: str | None) -> Fraction | None:
    """``"1,234.50"`` -> 2469/2; ``"-3"``, ``"025"`` -> 25, ``"$18"``, ``"45%"``, ``"3/4"``,
    ``"\\frac{3}{4}"``; anything else -> None. Exact rationals, so 0.1 + 0.2 style errors vanish."""
    if s is None:
        return None
    t = s.strip()
    t = re.sub(r"\\(?:text|mathrm|textbf|mbox)\{([^{}]*)\}", r"\1", t)
    t = t.replace("\\$", "").replace("$", "").replace("\\%", "").replace("%", "").replace("\\!", "")
    t = t.replace("−", "-").replace("–", "-").replace("\\,", "").replace("{,}", ",")
    t = re.sub(r"\\[dt]?frac\{(-?\d+)\}\{(\d+)\}", r"\1/\2", t)
    t = re.sub(r"\\[dt]?frac(\d)(\d)", r"\1/\2", t)
    t = t.strip().rstrip(".").strip()
    t = re.sub(r"^\s*(?:dollars?|usd)\s*|\s*(?:dollars?|usd|cents?|units?)\s*$", "", t, flags=re.IGNORECASE)
    t = t.replace(" ", "")
    m = re.fullmatch(r"([-+]?)(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d*\.?\d+)(?:/(\d+))?", t)
    if not m:
        return None
    sign, body, den = m.groups()
    try:
        value = Fraction(body.replace(",", ""))
        if den is not None:
            if int(den) == 0:
                return None
            value /= int(den)
    except (ValueError, ZeroDivisionError):
        return None
    return -value if sign == "-" else value


def extract_number(text: str) -> str | None:
    """GSM8K-style answer: the number in the last box, else after the last "answer is", else the
    last number of the response. Returned normalised (``"1,234"`` -> ``"1234"``)."""
    for candidate in (last_boxed(text), _clause_after_answer(text)):
        if candidate is None:
            continue
        value = parse_number(candidate)
        if value is None:
            found = find_numbers(candidate)
            value = parse_number(found[0]) if found else None
        if value is not None:
            return format_number(value)
    found = find_numbers(text)
    for s in reversed(found):
        value = parse_number(s)
        if value is not None:
            return format_number(value)
    return None


def _clause_after_answer(text: str) -> str | None:
    rest = after_answer_is(text)
    return _first_line_clause(rest) if rest is not None else None


def format_number(value: Fraction) -> str:
    """Canonical text of a number: integers plain, else a finite decimal or ``p/q``."""
    if value.denominator == 1:
        return str(value.numerator)
    as_float = float(value)
    if Fraction(repr(as_float)) == value:
        return repr(as_float)
    return f"{value.numerator}/{value.denominator}"


def numbers_equal(a: str | None, b: str | None) -> bool:
    """Both parse as numbers and are equal as exact rationals (``"025"`` == ``"25"``)."""
    x, y = parse_number(a), parse_number(b)
    return x is not None and y is not None and x == y


def gsm8k_gold(answer_field: str) -> str:
    """The gold number of a GSM8K ``answer`` field: the text after ``#### `` (commas removed)."""
    tail = answer_field.rsplit("####", 1)[-1].strip()
    value = parse_number(tail)
    return format_number(value) if value is not None else tail.replace(",", "")


# -------------------------------------------------------------------------------- math (LaTeX)


def extract_math(text: str) -> str | None:
    """MATH-style answer: the last ``\\boxed{}``, else the clause after the last "answer is"
    (``$`` stripped), else the last number."""
    boxed = last_boxed(text)
    if boxed:
        return boxed
    clause = _clause_after_answer(text)
    if clause:
        m = re.search(r"\$([^$]+)\$", clause)
        clause = (m.group(1) if m else clause).strip().strip("*").strip()
        if clause:
            return clause
    found = find_numbers(text)
    return found[-1].replace(" ", "") if found else None


def normalize_latex(s: str) -> str:
    """A string form for cheap equality before the symbolic check: spacing and presentation
    commands dropped (``\\left``, ``\\dfrac``, ``\\text{}``, degrees, trailing period)."""
    t = s.strip().strip("$").strip()
    t = re.sub(r"\\(?:left|right|displaystyle|!|,|;|:|quad)", "", t)
    t = re.sub(r"\\[dt]frac", r"\\frac", t)
    t = re.sub(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}", r"\1", t)
    t = re.sub(r"\^\{?\\circ\}?|°", "", t)
    t = t.replace("\\%", "").replace("%", "")
    t = re.sub(r"\s+", "", t).rstrip(".")
    t = re.sub(r"^[a-zA-Z]\s*=", "", t) if re.match(r"^[a-zA-Z]=[^=]+$", t) else t
    return t


def math_equal(pred: str | None, gold: str | None) -> bool:
    """LaTeX-aware equality: numbers exactly, then normalised strings, then math_verify."""
    if pred is None or gold is None or not pred.strip():
        return False
    if numbers_equal(pred, gold):
        return True
    if parse_number(pred) is not None and parse_number(gold) is not None:
        return False
    if normalize_latex(pred) == normalize_latex(gold):
        return True
    return _math_verify_equal(pred, gold)


def _math_verify_equal(pred: str, gold: str) -> bool:
    try:
        from math_verify import parse, verify
    except ImportError:
        return False
    # math_verify times out through SIGALRM, which only works in the main thread; elsewhere run
    # without its timeout (our inputs are single short answers, not whole responses).
    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    try:
        g = parse(f"${gold}$", parsing_timeout=timeout)
        p = parse(f"${pred}$", parsing_timeout=timeout)
        if not g or not p:
            return False
        return bool(verify(g, p, timeout_seconds=timeout))
    except Exception:  # noqa: BLE001 - a checker failure means "not shown equal", never a crash
        return False


# -------------------------------------------------------------------------------- multiple choice

LETTERS = "ABCDEFGHIJ"


def _choice_token(s: str, labels: Sequence[str], strict_lower: bool) -> str | None:
    """The label that ``s`` starts with, after markup such as ``**``, ``(``, ``$\\boxed{``, "option"."""
    s = re.sub(r"^(?:[\s*_`'\"(\[{$:]|\\boxed\{|\\text\{|\\textbf\{|option|choice)+", "", s, flags=re.IGNORECASE)
    if not s:
        return None
    numeric = labels[0].isdigit()
    if numeric:
        m = re.match(r"(\d+)(?!\d)", s)
        if m and m.group(1) in labels:
            return m.group(1)
        m = re.match(r"([A-J])(?![A-Za-z])", s)
        if m and LETTERS.index(m.group(1)) < len(labels):
            return labels[LETTERS.index(m.group(1))]
        return None
    head, nxt = s[0], s[1:2]
    if head.upper() not in labels or (nxt and nxt.isalpha()):
        return None
    if head.islower() and strict_lower and nxt not in (")", ".", "", "\n", "*"):
        return None  # "the answer is a trick question": an article, not option A
    return head.upper()


def extract_choice(text: str, labels: Sequence[str] = ("A", "B", "C", "D")) -> str | None:
    """The chosen option label, one of ``labels`` (letters, or ARC's digits "1".."5").

    Order: after the last answer marker; else the last marked label "(B)", "B)", "**B**",
    "\\boxed{B}"; else the first standalone label (a capital "A" followed by a lowercase word
    is taken for the article). For digit labels a letter answer maps by position (B -> "2").
    """
    labels = tuple(labels)
    if not labels:
        return None
    for m in reversed(list(_ANSWER_ANCHOR.finditer(text))):
        found = _choice_token(text[m.end():], labels, strict_lower=True)
        if found:
            return found
    marks = "|".join(re.escape(label) for label in labels)
    if labels[0].isdigit():
        marks += "|" + "|".join(LETTERS[: len(labels)])
    else:
        marks += "|" + "|".join(label.lower() for label in labels)
    marked = list(re.finditer(
        rf"\(({marks})\)|(?:^|\s)({marks})\)|\*\*({marks})\*\*|\\boxed\{{({marks})\}}", text, re.MULTILINE))
    if marked:
        token = next(g for g in marked[-1].groups() if g)
        return _choice_token(token, labels, strict_lower=False)
    if labels[0].isdigit():
        whole = text.strip().rstrip(".")
        return whole if whole in labels else None
    for m in re.finditer(rf"(?<![\w'’-])({'|'.join(labels)})(?![\w'’-])", text):
        if m.group(1) == "A" and re.match(r"\s+[a-z]", text[m.end():]):
            continue
        return m.group(1)
    return None


# -------------------------------------------------------------------------------- yes / no

_YES_NO = re.compile(r"\b(yes|no|true|false)\b", re.IGNORECASE)


def extract_yes_no(text: str) -> str | None:
    """"Yes" or "No" (True/False accepted): after the last answer marker, else the first one."""
    for m in reversed(list(_ANSWER_ANCHOR.finditer(text))):
        head = re.sub(r"^[\s*_`'\"(\[{$:]+|^\\boxed\{|^\\text\{", "", text[m.end():])
        found = re.match(r"(yes|no|true|false)\b", head, re.IGNORECASE)
        if found:
            return _yes_no(found.group(1))
    found = _YES_NO.search(text)
    return _yes_no(found.group(1)) if found else None


def _yes_no(word: str) -> str:
    return "Yes" if word.lower() in ("yes", "true") else "No"


# -------------------------------------------------------------------------------- names, text


def extract_name(text: str, names: Sequence[str]) -> str | None:
    """The first of ``names`` named after the last answer marker, else the last one named at all
    (whole words: "Annie" does not name "Ann")."""
    def mentions(part: str) -> list[tuple[int, str]]:
        return sorted((m.start(), n) for n in names for m in re.finditer(rf"\b{re.escape(n)}\b", part))

    rest = after_answer_is(text)
    if rest is not None and (found := mentions(rest)):
        return found[0][1]
    found = mentions(text)
    return found[-1][1] if found else None


def extract_text(text: str) -> str | None:
    """A free-form answer: the first line after the last answer marker, without its final period."""
    rest = after_answer_is(text)
    return rest.split("\n", 1)[0].strip().rstrip(".") if rest else None


def same_text(a: str, b: str) -> bool:
    """Equal up to case and surrounding spaces (option labels, Yes/No, names, free text)."""
    return a.strip().lower() == b.strip().lower()


# -------------------------------------------------------------------------------- code, judged

# A fence opens at the start of a line (so the closing fence of a block is not taken for the
# opening of the next) and closes anywhere; an unclosed last block runs to the end.
_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[ \t]*\n(.*?)(?:```|\Z)", re.S | re.M)
_PYTHON = ("", "python", "py", "python3")
_BEGIN_DONE = re.compile(r"\[BEGIN\]\s*\n?(.*?)(?:\[DONE\]|\Z)", re.S)


def extract_code(text: str) -> str | None:
    """The program in a response: its first fenced Python (or unlabelled) code block, else the
    text between [BEGIN] and [DONE], else the whole response when it looks like code; None
    when there is none."""
    for match in _FENCE.finditer(text):
        if match.group(1).lower() in _PYTHON and match.group(2).strip():
            return match.group(2).strip("\n")
    match = _BEGIN_DONE.search(text)
    if match and match.group(1).strip():
        return match.group(1).strip("\n")
    whole = text.strip()
    return whole if re.search(r"^\s*(def|class|import|from)\s", whole, re.M) else None


def same_program(a: str, b: str) -> bool:
    """The same source up to blank lines and trailing spaces (grouping samples for maj@n)."""
    def lines(src: str) -> list[str]:
        return [line.rstrip() for line in src.strip().splitlines() if line.strip()]

    return lines(a) == lines(b)


def whole_response(text: str) -> str | None:
    """A judged answer: the response itself; None when it is empty."""
    return text.strip() or None
