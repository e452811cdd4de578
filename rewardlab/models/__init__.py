"""Models: backbones and the reward head (backbone.py), the shared-prompt packed forward
(shared_prompt.py), the training forward (heads.py), LoRA (lora.py), and reading head outputs
without gradients (readout.py). The scoring API :class:`rewardlab.RewardModel` sits above the
kinds, in rewardlab/inference/."""

from ..errors import ModelError

__all__ = ["ModelError"]
