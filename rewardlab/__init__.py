"""rewardlab: train, evaluate and serve reward models for RLHF.

    import rewardlab
    result = rewardlab.train(data=rows, model="smollm2", output="runs/rm")   # -> TrainResult
    rewardlab.evaluate(result.model, "rewardbench.jsonl").to_json()          # -> EvalResult
    rewardlab.RewardModel.from_pretrained("runs/rm").score(prompts, completions)
    rewardlab.serve("runs/rm", port=5000)                                    # an HTTP reward server
"""

__version__ = "0.1.0"

from .config import ModelSettings, ScoreOptions, TrainConfig  # noqa: E402
from .eval.evaluate import EvalResult, evaluate  # noqa: E402
from .inference import RewardModel  # noqa: E402
from .judge import Judge  # noqa: E402
from .serve.api import create_app, serve  # noqa: E402
from .serve.client import RewardClient  # noqa: E402
from .training import Callback, TrainResult, train  # noqa: E402

__all__ = ["Callback", "EvalResult", "Judge", "ModelSettings", "RewardClient", "RewardModel", "ScoreOptions",
           "TrainConfig", "TrainResult", "__version__", "create_app", "evaluate", "serve", "train"]
