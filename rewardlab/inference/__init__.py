"""Inference above the kinds: :class:`RewardModel` loads a saved model and asks its kind how to
score a text (reward_model.py); rows.py turns the row forms ``rewardlab score`` and ``POST
/score`` read into texts and writes every row back with what its kind read."""

from .reward_model import RewardModel

__all__ = ["RewardModel"]
