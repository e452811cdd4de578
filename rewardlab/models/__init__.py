"""Models: backbones and the reward head (backbone.py), the shared-prompt packed forward
(shared_prompt.py), the training forward (heads.py), LoRA (lora.py), and the scoring API
:class:`RewardModel` (reward_model.py)."""

from ..errors import ModelError
from .reward_model import RewardModel

__all__ = ["ModelError", "RewardModel"]
