"""Preference and supervised losses as pure functions of per-sequence summaries.

Every loss takes a :class:`PairLogps` (summed response log-probs of the policy and, where the
loss needs it, the frozen reference; response token counts; advantages; per-pair weights) and
a :class:`LossParams`, and returns a :class:`LossOutput`: the scalar loss (mean over the batch)
plus the implicit rewards for logging. Which function a loss name means is decided in exactly
one place, :data:`LOSSES`.

Notation: ``pi_w``/``pi_l`` policy log-probs of chosen/rejected, ``ref_w``/``ref_l`` the
reference's, ``r_w = pi_w - ref_w``, ``r_l = pi_l - ref_l``; ``c_i`` the per-pair weight.

- aco (paper, default): ``-log sigmoid(beta * (r_w - w * r_l))`` with
  ``w = min(1, exp(-(A_l - A_w) / alpha))`` (paper Eqs. 10-12). ``aco_clip="max"`` is the
  reference code's ``w = max(1, exp((A_w - A_l) / alpha))``.
  ``w`` depends only on the advantages, which are numbers computed at sampling time and stored
  in the pairs file, so it is a constant per pair: no gradient can flow through it (it is
  built from tensors that never required grad, and detached anyway). When ``A_w >= A_l`` the
  paper weight is exactly 1 and ACO is DPO.
- dpo: ACO with ``w = 1``.
- ipo: ``(r_w - r_l - 1/(2 beta))^2`` on summed log-ratios (IPO paper, Azar et al. 2023).
- simpo: reference-free, ``-log sigmoid(b * (pi_w/|y_w| - pi_l/|y_l|) - gamma)`` (Meng et al. 2024).
- ropo: ``ropo_alpha * sigmoid(-beta*h) + ropo_gamma * (-log sigmoid(beta*h))`` with
  ``h = r_w - r_l``. ROPO (Liang et al. 2024, arXiv 2404.04102) trades off a noise-aware loss
  ``sigmoid(-beta*h)`` - whose gradient weight sigmoid(beta*h)*sigmoid(-beta*h) vanishes for
  pairs the model confidently ranks the other way, i.e. likely label noise - against the DPO
  loss as a regulariser. We implement that loss with both weights as settings; ROPO's
  iterative noisy-sample filtering and rejection-sampling stages are outside a loss function
  and are not implemented.
- sft: length-normalised NLL of the chosen response, ``-pi_w / |y_w|`` (each example counts
  equally, whatever its length).
- dpo_nll: DPO plus ``nll_weight`` times the sft term (ScPO: vote-margin weighted DPO + NLL).

The per-pair weight ``c_i`` (record field ``weight``, default 1) multiplies each pair's loss
for every loss; the batch loss is ``mean_i(c_i * l_i)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from genius.errors import UserError


@dataclass
class PairLogps:
    """Per-sequence summaries of one batch; every tensor has shape [B]."""

    policy_chosen: Tensor
    """Summed log-prob of the chosen response tokens under the policy (carries the gradient)."""
    chosen_tokens: Tensor
    """Number of chosen response tokens (the EOS included)."""
    policy_rejected: Tensor | None = None
    rejected_tokens: Tensor | None = None
    ref_chosen: Tensor | None = None
    """Same sums under the frozen reference model (no gradient)."""
    ref_rejected: Tensor | None = None
    adv_chosen: Tensor | None = None
    """Advantages A_w, A_l from sampling (ACO only)."""
    adv_rejected: Tensor | None = None
    weight: Tensor | None = None
    """Per-pair loss weight; None means 1."""


@dataclass
class LossParams:
    """The hyper-parameters of every loss, declared once: ``TrainConfig`` inherits these fields,
    so they are flat keys of a train config (``beta: 0.2``, ``--set simpo_gamma=1``)."""

    beta: float = 0.1
    """KL strength of the DPO family (aco, dpo, ipo, ropo, dpo_nll)."""
    alpha: float = 1.0
    """ACO temperature of the advantage gap."""
    aco_clip: Literal["paper", "max"] = "paper"
    """paper: w = min(1, exp(-(A_l - A_w)/alpha)); max: the reference code's max(1, exp((A_w - A_l)/alpha))."""
    simpo_beta: float = 2.0
    """SimPO reward scale."""
    simpo_gamma: float = 0.5
    """SimPO target margin."""
    ropo_alpha: float = 2.0
    """ROPO weight of the noise-aware term sigmoid(-beta*h)."""
    ropo_gamma: float = 0.1
    """ROPO weight of the DPO term."""
    nll_weight: float = 1.0
    """Weight of the chosen-response NLL in dpo_nll."""


@dataclass
class LossOutput:
    loss: Tensor
    """Scalar to minimise."""
    chosen_rewards: Tensor
    """Implicit reward of each chosen response, [B] (no gradient). For the DPO family
    ``beta * r_w``; for simpo ``simpo_beta * pi_w/|y_w|``; for sft the mean token log-prob."""
    rejected_rewards: Tensor | None
    aco_weights: Tensor | None = None
    """The calibration weight w per pair (aco only)."""


@dataclass(frozen=True)
class LossSpec:
    fn: Callable[[PairLogps, LossParams], LossOutput]
    needs_reference: bool
    needs_rejected: bool
    needs_advantages: bool


def aco_weight(adv_chosen: Tensor, adv_rejected: Tensor, alpha: float, clip: str = "paper") -> Tensor:
    """Paper: min(1, exp(-(A_l - A_w)/alpha)); code variant ("max"): max(1, exp((A_w - A_l)/alpha))."""
    gap = (adv_chosen - adv_rejected).detach()
    if clip == "paper":
        # exp() of a large positive gap would overflow before the min; clamp the exponent at 0.
        return torch.exp(torch.clamp(gap / alpha, max=0.0))
    if clip == "max":
        return torch.clamp(torch.exp(gap / alpha), min=1.0)
    raise UserError(f"unknown aco_clip '{clip}': expected paper or max")


def _pair_weight(x: PairLogps) -> Tensor:
    return x.weight if x.weight is not None else torch.ones_like(x.policy_chosen)


def _ratios(x: PairLogps) -> tuple[Tensor, Tensor]:
    if x.ref_chosen is None or x.ref_rejected is None or x.policy_rejected is None:
        raise ValueError("this loss needs policy and reference log-probs of chosen and rejected")
    return x.policy_chosen - x.ref_chosen.detach(), x.policy_rejected - x.ref_rejected.detach()


def _calibrated_sigmoid(x: PairLogps, p: LossParams, w: Tensor) -> LossOutput:
    r_w, r_l = _ratios(x)
    per_pair = -F.logsigmoid(p.beta * (r_w - w * r_l))
    return LossOutput((_pair_weight(x) * per_pair).mean(), (p.beta * r_w).detach(), (p.beta * r_l).detach())


def aco_loss(x: PairLogps, p: LossParams) -> LossOutput:
    if x.adv_chosen is None or x.adv_rejected is None:
        raise ValueError("aco needs the advantages A_w and A_l")
    w = aco_weight(x.adv_chosen, x.adv_rejected, p.alpha, p.aco_clip)
    out = _calibrated_sigmoid(x, p, w)
    out.aco_weights = w
    return out


def dpo_loss(x: PairLogps, p: LossParams) -> LossOutput:
    return _calibrated_sigmoid(x, p, torch.ones_like(x.policy_chosen))


def ipo_loss(x: PairLogps, p: LossParams) -> LossOutput:
    r_w, r_l = _ratios(x)
    per_pair = (r_w - r_l - 1.0 / (2.0 * p.beta)) ** 2
    return LossOutput((_pair_weight(x) * per_pair).mean(), (p.beta * r_w).detach(), (p.beta * r_l).detach())


def simpo_loss(x: PairLogps, p: LossParams) -> LossOutput:
    if x.policy_rejected is None or x.rejected_tokens is None:
        raise ValueError("simpo needs the rejected responses")
    s_w = p.simpo_beta * x.policy_chosen / x.chosen_tokens
    s_l = p.simpo_beta * x.policy_rejected / x.rejected_tokens
    per_pair = -F.logsigmoid(s_w - s_l - p.simpo_gamma)
    return LossOutput((_pair_weight(x) * per_pair).mean(), s_w.detach(), s_l.detach())


def ropo_loss(x: PairLogps, p: LossParams) -> LossOutput:
    r_w, r_l = _ratios(x)
    h = p.beta * (r_w - r_l)
    per_pair = p.ropo_alpha * torch.sigmoid(-h) + p.ropo_gamma * -F.logsigmoid(h)
    return LossOutput((_pair_weight(x) * per_pair).mean(), (p.beta * r_w).detach(), (p.beta * r_l).detach())


def _mean_token_logp(logps: Tensor, tokens: Tensor) -> Tensor:
    return logps / tokens


def sft_loss(x: PairLogps, p: LossParams) -> LossOutput:
    per_pair = -_mean_token_logp(x.policy_chosen, x.chosen_tokens)
    rejected = None
    if x.policy_rejected is not None and x.rejected_tokens is not None:
        rejected = _mean_token_logp(x.policy_rejected, x.rejected_tokens).detach()
    return LossOutput((_pair_weight(x) * per_pair).mean(), -per_pair.detach(), rejected)


def dpo_nll_loss(x: PairLogps, p: LossParams) -> LossOutput:
    r_w, r_l = _ratios(x)
    nll = -_mean_token_logp(x.policy_chosen, x.chosen_tokens)
    per_pair = -F.logsigmoid(p.beta * (r_w - r_l)) + p.nll_weight * nll
    return LossOutput((_pair_weight(x) * per_pair).mean(), (p.beta * r_w).detach(), (p.beta * r_l).detach())


DEFAULT_LOSS = "aco"
"""The loss of a training that names none (Genius); a baseline's own is its builder's ``loss``."""

# The one place a loss name is turned into code.
LOSSES: dict[str, LossSpec] = {
    "aco": LossSpec(aco_loss, needs_reference=True, needs_rejected=True, needs_advantages=True),
    "dpo": LossSpec(dpo_loss, needs_reference=True, needs_rejected=True, needs_advantages=False),
    "ipo": LossSpec(ipo_loss, needs_reference=True, needs_rejected=True, needs_advantages=False),
    "simpo": LossSpec(simpo_loss, needs_reference=False, needs_rejected=True, needs_advantages=False),
    "ropo": LossSpec(ropo_loss, needs_reference=True, needs_rejected=True, needs_advantages=False),
    "sft": LossSpec(sft_loss, needs_reference=False, needs_rejected=False, needs_advantages=False),
    "dpo_nll": LossSpec(dpo_nll_loss, needs_reference=True, needs_rejected=True, needs_advantages=False),
}


def get_loss(name: str) -> LossSpec:
    try:
        return LOSSES[name]
    except KeyError:
        raise UserError(f"unknown loss '{name}': expected one of {', '.join(LOSSES)}") from None
