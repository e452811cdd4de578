"""rewardlab: train, evaluate and serve reward models for RLHF."""

__version__ = "0.1.0"

from .judge import Judge  # noqa: E402
from .inference import RewardModel  # noqa: E402
from .serve.client import RewardClient  # noqa: E402

__all__ = ["Judge", "RewardClient", "RewardModel", "__version__"]
