"""The loss family against values worked out by hand.

Shared example (one pair unless said otherwise):
    policy  pi_w = -10 (5 tokens), pi_l = -15 (3 tokens)
    reference ref_w = -12, ref_l = -14
    => r_w = pi_w - ref_w = 2, r_l = pi_l - ref_l = -1, h = r_w - r_l = 3
    beta = 0.1 => beta*h = 0.3
    -log sigmoid(0.3) = log(1 + e^-0.3) = log(1.7408182) = 0.5543552
"""

from __future__ import annotations

import math

from pathlib import Path

import pytest
import torch

from genius.errors import UserError
from genius.training.losses import LOSSES, LossParams, PairLogps, aco_weight, get_loss

DPO_VALUE = 0.5543552


def pair(a_w: float = 0.0, a_l: float = 0.0, weight: float | None = None, grad: bool = False) -> PairLogps:
    t = lambda v: torch.tensor([v], requires_grad=grad)  # noqa: E731
    return PairLogps(policy_chosen=t(-10.0), chosen_tokens=torch.tensor([5.0]), policy_rejected=t(-15.0),
                     rejected_tokens=torch.tensor([3.0]), ref_chosen=t(-12.0), ref_rejected=t(-14.0),
                     adv_chosen=t(a_w), adv_rejected=t(a_l),
                     weight=None if weight is None else torch.tensor([weight]))


def value(name: str, x: PairLogps, **params: float | str) -> float:
    return get_loss(name).fn(x, LossParams(**params)).loss.item()


def test_dpo_hand_value_and_rewards():
    """loss = log(1 + e^-0.3) = 0.5543552; rewards beta*r: chosen 0.2, rejected -0.1."""
    out = LOSSES["dpo"].fn(pair(), LossParams())
    assert out.loss.item() == pytest.approx(DPO_VALUE, abs=1e-6)
    assert out.chosen_rewards.item() == pytest.approx(0.2)
    assert out.rejected_rewards.item() == pytest.approx(-0.1)


@pytest.mark.parametrize("a_w,a_l", [(0.5, 0.2), (0.3, 0.3), (5.0, -5.0)])
def test_aco_equals_dpo_when_chosen_advantage_is_not_lower(a_w, a_l):
    """A_w >= A_l => w = min(1, exp((A_w - A_l)/alpha)) = 1 exactly, so ACO is DPO."""
    out = LOSSES["aco"].fn(pair(a_w, a_l), LossParams())
    assert out.aco_weights.item() == 1.0
    assert out.loss.item() == value("dpo", pair())


def test_aco_calibration_region_hand_value():
    """A_w = 0, A_l = 1, alpha = 1: w = exp(-1) = 0.3678794.
    beta*(r_w - w*r_l) = 0.1*(2 + 0.3678794) = 0.2367879; loss = log(1 + e^-0.2367879) = 0.5817455."""
    out = LOSSES["aco"].fn(pair(0.0, 1.0), LossParams())
    assert out.aco_weights.item() == pytest.approx(math.exp(-1))
    assert out.loss.item() == pytest.approx(0.5817455, abs=1e-6)


def test_aco_code_variant_max():
    """aco_clip=max, A_w = 1, A_l = 0: w = max(1, e^1) = 2.7182818;
    beta*(2 + 2.7182818) = 0.4718282; loss = log(1 + e^-0.4718282) = 0.4848065.
    In the calibration case (A_w < A_l) the code variant gives w = 1, i.e. DPO."""
    assert value("aco", pair(1.0, 0.0), aco_clip="max") == pytest.approx(0.4848065, abs=1e-6)
    assert value("aco", pair(0.0, 1.0), aco_clip="max") == pytest.approx(DPO_VALUE, abs=1e-6)


def test_aco_weight_alpha_and_no_overflow():
    """alpha = 2, gap A_w - A_l = -1 => w = exp(-0.5) = 0.6065307; a huge positive gap stays finite (1)."""
    w = aco_weight(torch.tensor([0.0, 1000.0]), torch.tensor([1.0, 0.0]), alpha=2.0)
    assert w[0].item() == pytest.approx(0.6065307, abs=1e-6)
    assert w[1].item() == 1.0
    with pytest.raises(UserError, match="aco_clip"):
        aco_weight(torch.tensor([0.0]), torch.tensor([0.0]), 1.0, "min")


def test_ipo_hand_value():
    """(h - 1/(2 beta))^2 = (3 - 5)^2 = 4."""
    assert value("ipo", pair()) == pytest.approx(4.0)


def test_the_authors_ipo_and_ropo_presets_by_hand():
    """configs/table4_ipo_code.yaml: beta 0.5 gives the reference code's (h - 1)^2; with h = r_w - r_l
    = 3 + 1 = 4 that is 9, where ours (beta 0.1) gives (4 - 5)^2 = 1. ROPO alpha 0.2
    (table4_ropo_code.yaml), beta 0.1, gamma 0.1, h = 0.3:
    0.2 * sigmoid(-0.3) + 0.1 * log(1 + e^-0.3) = 0.2 * 0.4255575 + 0.1 * 0.5543552 = 0.1405470."""
    import yaml

    from genius.config import from_dict
    from genius.training import TrainConfig

    root = Path(__file__).resolve().parents[2] / "configs"
    ipo = from_dict(TrainConfig, yaml.safe_load((root / "table4_ipo_code.yaml").read_text())["train"])
    ropo = from_dict(TrainConfig, yaml.safe_load((root / "table4_ropo_code.yaml").read_text())["train"])
    assert (ipo.loss, ipo.beta, ropo.loss, ropo.ropo_alpha) == ("ipo", 0.5, "ropo", 0.2)
    x = pair()
    x.policy_chosen = x.policy_chosen + 1.0  # h = 4
    assert value("ipo", x, beta=0.5) == pytest.approx((4 - 1) ** 2) and value("ipo", x) == pytest.approx(1.0)
    assert value("ropo", pair(), ropo_alpha=0.2) == pytest.approx(0.1405470, abs=1e-6)


def test_simpo_hand_value_is_reference_free():
    """pi_w/|y_w| = -2, pi_l/|y_l| = -5; scaled by simpo_beta 2: -4, -10.
    -4 - (-10) - gamma 0.5 = 5.5; loss = log(1 + e^-5.5) = 0.0040784. The reference is unused."""
    x = pair()
    x.ref_chosen = x.ref_rejected = None
    out = LOSSES["simpo"].fn(x, LossParams())
    assert out.loss.item() == pytest.approx(0.0040784, abs=1e-6)
    assert out.chosen_rewards.item() == pytest.approx(-4.0)


def test_ropo_hand_value():
    """ropo_alpha*sigmoid(-0.3) + ropo_gamma*(-log sigmoid(0.3)) = 2*0.4255575 + 0.1*0.5543552 = 0.9065505."""
    assert value("ropo", pair()) == pytest.approx(0.9065505, abs=1e-6)


def test_sft_and_dpo_nll_hand_values():
    """sft: -pi_w/|y_w| = 10/5 = 2. dpo_nll: 0.5543552 + nll_weight 1 * 2 = 2.5543552; nll_weight 0.5: 1.5543552."""
    assert value("sft", pair()) == pytest.approx(2.0)
    assert value("dpo_nll", pair()) == pytest.approx(2.5543552, abs=1e-6)
    assert value("dpo_nll", pair(), nll_weight=0.5) == pytest.approx(1.5543552, abs=1e-6)


def test_per_pair_weight_and_batch_mean():
    """Two pairs, the second identical but weighted 0 (then 3): mean(1*l, 0*l) = l/2, mean(l, 3l) = 2l."""
    one = pair()

    def two(w2: float) -> PairLogps:
        cat = lambda a, b: None if a is None else torch.cat([a, b])  # noqa: E731
        x = PairLogps(**{k: cat(v, v) for k, v in vars(one).items() if v is not None})
        x.weight = torch.tensor([1.0, w2])
        return x

    assert value("dpo", two(0.0)) == pytest.approx(DPO_VALUE / 2, abs=1e-6)
    assert value("dpo", two(3.0)) == pytest.approx(2 * DPO_VALUE, abs=1e-6)


def test_gradients_flow_only_through_policy_logps():
    """d loss/d pi_w = -beta*sigmoid(-beta*(r_w - w r_l)) and d/d pi_l = +beta*w*sigmoid(...).
    With w = exp(-1): sigmoid(-0.2367879) = 0.4410781 => -0.0441078 and 0.1*0.3678794*0.4410781 = 0.0162264.
    The reference log-probs and the advantages (hence w) get no gradient."""
    x = pair(0.0, 1.0, grad=True)
    LOSSES["aco"].fn(x, LossParams()).loss.backward()
    assert x.policy_chosen.grad.item() == pytest.approx(-0.0441078, abs=1e-6)
    assert x.policy_rejected.grad.item() == pytest.approx(0.0162264, abs=1e-6)
    for t in (x.ref_chosen, x.ref_rejected, x.adv_chosen, x.adv_rejected):
        assert t.grad is None


def test_dpo_gradient_is_minus_beta_sigmoid():
    """d/d pi_w = -0.1*sigmoid(-0.3) = -0.0425557; d/d pi_l = +0.0425557."""
    x = pair(grad=True)
    LOSSES["dpo"].fn(x, LossParams()).loss.backward()
    assert x.policy_chosen.grad.item() == pytest.approx(-0.0425557, abs=1e-6)
    assert x.policy_rejected.grad.item() == pytest.approx(0.0425557, abs=1e-6)


def test_unknown_loss_lists_the_known_ones():
    with pytest.raises(UserError) as e:
        get_loss("kto")
    for name in ("aco", "dpo", "ipo", "simpo", "ropo", "sft", "dpo_nll"):
        assert name in str(e.value)


def test_train_config_holds_the_loss_params_once_as_flat_keys() -> None:
    """TrainConfig inherits LossParams' fields: one declaration, flat YAML keys, and loss_params()
    hands the loss exactly what the config says."""
    import dataclasses

    from genius.config import from_dict, to_dict
    from genius.training import TrainConfig

    cfg = from_dict(TrainConfig, {"beta": 0.2, "simpo_gamma": 1.0, "aco_clip": "max", "nll_weight": 0.5})
    assert cfg.loss_params() == LossParams(beta=0.2, simpo_gamma=1.0, aco_clip="max", nll_weight=0.5)
    saved = to_dict(cfg)
    assert all(saved[f.name] == getattr(cfg, f.name) for f in dataclasses.fields(LossParams))
    assert TrainConfig().loss_params() == LossParams()
    with pytest.raises(UserError, match="key 'aco_clip': expected one of 'paper', 'max'"):
        from_dict(TrainConfig, {"aco_clip": "min"})
