"""Models: backbones and the reward head (backbone.py), the shared-prompt packed forward
(shared_prompt.py; its rows in layout.py, its attention in attention.py), the packed encoder
forward (packed_encoder.py), the one forward-path choice and a typed batch per path (heads.py,
batch.py), LoRA (lora.py), and a kind's readout helpers (readout.py). The scoring API :class:`rewardlab.RewardModel` sits above the
kinds, in rewardlab/inference/."""

from ..errors import ModelError

__all__ = ["ModelError"]
