"""``RewardClient``: rewards from one or several ``rewardlab serve`` processes, with a timeout
and retries; an instance is also a TRL ``GRPOTrainer`` reward function.

    from rewardlab import RewardClient
    rm = RewardClient("http://127.0.0.1:5000")             # or a list of URLs, spread round-robin
    rm.get_reward(["Q: 2+2? A: 4"])                          # OpenRLHF's protocol: whole texts
    rm.score([{"prompt": "Q: 2+2?", "completion": " 4"}])    # rows as `rewardlab score` reads them
    GRPOTrainer(..., reward_funcs=[RewardClient(url)])       # prompts/completions, plain or chat

Standard library only (urllib), so an RL process needs nothing more to call it.
"""

from __future__ import annotations

import itertools
import json
import os
import time
import urllib.error
import urllib.request


class RewardClientError(RuntimeError):
    """The server refused the request (HTTP 4xx, not retried) or could not be reached."""


class RewardClient:
    def __init__(self, urls: str | list[str], api_key: str | None = None, timeout: float = 180.0,
                 retries: int = 5, backoff: float = 0.5, api_key_env: str = "REWARDLAB_API_KEY"):
        self.urls = [u.rstrip("/") for u in ([urls] if isinstance(urls, str) else urls)]
        if not self.urls:
            raise ValueError("RewardClient needs at least one URL")
        self.api_key = api_key if api_key is not None else os.environ.get(api_key_env) or None
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self._next = itertools.cycle(range(len(self.urls)))
        self.__name__ = "rewardlab_reward"  # TRL logs each reward function under its __name__

    def _post(self, path: str, body: dict) -> dict:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = None
        for attempt in range(self.retries + 1):
            url = self.urls[next(self._next)] + path  # each try may go to the next server
            try:
                with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=self.timeout) as r:
                    return json.loads(r.read())
            except urllib.error.HTTPError as e:
                message = e.read().decode(errors="replace")
                try:
                    message = json.loads(message).get("error", message)
                except (ValueError, AttributeError):
                    pass
                if e.code < 500:  # the request itself is wrong: retrying cannot help
                    raise RewardClientError(f"{url}: HTTP {e.code}: {message}") from None
                last = f"HTTP {e.code}: {message}"
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                last = str(getattr(e, "reason", e))
            if attempt < self.retries:
                time.sleep(self.backoff * 2 ** attempt)
        raise RewardClientError(f"{path}: no answer after {self.retries + 1} tries: {last}")

    def get_reward(self, queries: list[str], prompts: list[str] | None = None) -> list[float]:
        """Rewards for whole texts (prompt + response), OpenRLHF's ``/get_reward``."""
        body = {"query": list(queries), **({"prompts": list(prompts)} if prompts is not None else {})}
        return self._post("/get_reward", body)["rewards"]

    def get_reward_details(self, queries: list[str], prompts: list[str] | None = None) -> dict:
        """The whole ``/get_reward`` answer: ``rewards`` and ``extra_logs``, which for an ensemble
        holds ``reward_std`` (the members' spread) and ``reward_mean`` per query."""
        body = {"query": list(queries), **({"prompts": list(prompts)} if prompts is not None else {})}
        return self._post("/get_reward", body)

    def rewards_with_spread(self, queries: list[str], prompts: list[str] | None = None) -> tuple[list, list]:
        """(rewards, spread) per query: an ensemble's aggregate and its members' std (a
        conservative RL loop can penalise the spread itself); a single model has no spread
        (a ValueError says so)."""
        answer = self.get_reward_details(queries, prompts)
        if "reward_std" not in answer.get("extra_logs", {}):
            raise ValueError("this server's model is not an ensemble: it sends no reward_std")
        return answer["rewards"], answer["extra_logs"]["reward_std"]

    def score(self, rows: list[dict]) -> list[dict]:
        """Rows as ``rewardlab score`` reads them, back with what it writes."""
        return self._post("/score", {"rows": list(rows)})["rows"]

    def __call__(self, prompts: list, completions: list, **kwargs) -> list[float]:
        """TRL's reward-function call: one float per completion. Prompts and completions are
        strings, or chat messages (``[{"role", "content"}, ...]``) that the server renders
        with the model's chat template, as in training."""
        rows = [{"prompt": p, "completion": c} for p, c in zip(prompts, completions)]
        return [r["reward"] for r in self.score(rows)]
