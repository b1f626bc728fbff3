"""Every prompt the baselines send to the model, in one place.

Generation for every method uses the query itself as the user turn (the same chat prompt
as Genius), optionally after a system message and followed by an assistant prefix, so that
Genius and the baselines differ only in how they build their training data.

CoH (chain of hindsight, Liu et al. 2023) needs labelled good/bad responses; in the
unsupervised setting of the Genius paper (appendix, baselines) the model itself is
*prompted* to write a better response and a worse response to the same query. The two
instructions below wrap the query; the pair is then trained on the *original* query
(chosen = the positive response, rejected = the negative one), with DPO. The paper's
exact appendix wording was not available offline: these prompts follow its description.

Self-Rewarding (Yuan et al. 2024, "Self-Rewarding Language Models", Figure 2) judges each
candidate with the additive 5-point LLM-as-a-judge prompt reproduced verbatim below; the
score is read from the final "Score: X".
"""

from __future__ import annotations

COH_POSITIVE = (
    "Answer the question below with a good response: helpful, correct and well reasoned, "
    "working step by step towards a clear final answer.\n\n"
    "Question: {query}"
)
"""Self-prompted positive response (CoH's "a helpful answer")."""

COH_NEGATIVE = (
    "Answer the question below with a bad response: unhelpful, with flawed reasoning and "
    "mistakes, reaching a wrong or unclear final answer.\n\n"
    "Question: {query}"
)
"""Self-prompted negative response (CoH's "an unhelpful answer")."""

SELF_REWARDING_JUDGE = """Review the user's question and the corresponding response using the additive 5-point scoring system described below. Points are accumulated based on the satisfaction of each criterion:

- Add 1 point if the response is relevant and provides some information related to the user's inquiry, even if it is incomplete or contains some irrelevant content.
- Add another point if the response addresses a substantial portion of the user's question, but does not completely resolve the query or provide a direct answer.
- Award a third point if the response answers the basic elements of the user's question in a useful way, regardless of whether it seems to have been written by an AI Assistant or if it has elements typically found in blogs or search results.
- Grant a fourth point if the response is clearly written from an AI Assistant's perspective, addressing the user's question directly and comprehensively, and is well-organized and helpful, even if there is slight room for improvement in clarity, conciseness or focus.
- Bestow a fifth point for a response that is impeccably tailored to the user's question by an AI Assistant, without extraneous information, reflecting expert knowledge, and demonstrating a high-quality, engaging, and insightful answer.

User: {query}
<response>{response}</response>

After examining the user's instruction and the response:

- Briefly justify your total score, up to 100 words.
- Conclude with the score using the format: "Score: <total points>"

Remember to assess from the AI Assistant perspective, utilizing web search knowledge as necessary. To evaluate the response in alignment with this additive scoring model, we'll systematically attribute points based on the outlined criteria."""
"""Yuan et al. (2024), Figure 2: the LLM-as-a-Judge prompt (additive 5-point scale)."""


def query_text(messages: list[dict[str, str]]) -> str:
    """The text of the query's last user turn (what the CoH and judge prompts wrap)."""
    for m in reversed(messages):
        if m["role"] == "user":
            return m["content"]
    return messages[-1]["content"]


def coh_prompts(messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The (positive, negative) chat prompts for one query; earlier turns are kept."""
    query = query_text(messages)
    head = [m for m in messages if m["role"] == "system"]
    return (head + [{"role": "user", "content": COH_POSITIVE.format(query=query)}],
            head + [{"role": "user", "content": COH_NEGATIVE.format(query=query)}])


def judge_prompt(messages: list[dict[str, str]], response: str) -> list[dict[str, str]]:
    """The judge's chat prompt for one (query, response)."""
    return [{"role": "user", "content": SELF_REWARDING_JUDGE.format(query=query_text(messages), response=response)}]
