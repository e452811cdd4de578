"""rewardlab: train, evaluate and serve reward models for RLHF."""

__version__ = "0.1.0"

from .models import RewardModel  # noqa: E402

__all__ = ["RewardModel", "__version__"]
