"""Training on preference pairs (ACO and the loss family) or SFT examples, on HF accelerate."""

from genius.training.config import LoraSettings, TrainConfig
from genius.training.loop import run_train
from genius.training.losses import LOSSES, LossOutput, LossParams, PairLogps

__all__ = ["LOSSES", "LoraSettings", "LossOutput", "LossParams", "PairLogps", "TrainConfig", "run_train"]
