"""Serve a reward model over HTTP (FastAPI + uvicorn), for an RL loop or anything else.

    rewardlab serve --model runs/rm --port 8000

Endpoints:
- ``GET /health``: ``{"status": "ok", "model", "max_length"}``.
- ``POST /score``: ``{"rows": [...]}``, rows as ``rewardlab score`` reads them (prompt +
  completion, prompt + completions, chosen/rejected; strings or chat messages). Answers
  ``{"rows": [... each with its rewards], "truncated": n}`` in request order.
- ``POST /get_reward``: OpenRLHF's remote reward-model protocol (``--remote_rm_url``):
  ``{"query": [prompt + response, ...], "prompts": [...]}`` -> ``{"rewards": [...]}`` (also under
  ``"score"``, the key older OpenRLHF versions read).

Bad input is HTTP 400 with one line: ``{"error": "request: row 2: empty completion"}``. One model
instance serves requests one at a time (a lock; the model is not thread-safe, and an RL loop
sends batches). Rewards equal ``RewardModel.score`` exactly: the same encoding and batching code.
"""

from __future__ import annotations

import threading

import torch

from ..data.text import Text
from ..errors import DataError
from ..eval.score import score_rows
from ..models.reward_model import RewardModel


def split_query(query: str, prompt: str | None, tokenizer) -> Text:
    """OpenRLHF sends whole texts; the prompt, when given, must be their start. A text that
    starts with the tokenizer's BOS already holds its special tokens (a rendered chat template)."""
    if prompt is not None and not query.startswith(prompt):
        raise DataError("query does not start with its prompt")
    prompt = prompt or ""
    bos = getattr(tokenizer, "bos_token", None)
    return Text(prompt, query[len(prompt):], templated=bool(bos) and query.startswith(bos))


def create_app(rm, name: str = "", batch_size: int = 16, max_tokens: int = 16384):
    """The FastAPI application around a :class:`rewardlab.RewardModel`."""
    from fastapi import Body, FastAPI
    from fastapi.responses import JSONResponse

    app = FastAPI(title="rewardlab reward model", description=f"Rewards from {name or 'a reward model'}.")
    lock = threading.Lock()

    def bad(message: str) -> JSONResponse:
        return JSONResponse(status_code=400, content={"error": message})

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "model": name, "max_length": rm.max_length}

    @app.post("/score")
    def score(body: dict = Body(...)):
        rows = body.get("rows")
        if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
            return bad("request: 'rows' must be a non-empty list of objects")
        try:
            with lock:
                scored, counts = score_rows(rm, rows, "request", batch_size, max_tokens)
        except DataError as e:
            return bad(str(e))
        return {"rows": scored, "truncated": counts.truncated}

    @app.post("/get_reward")
    def get_reward(body: dict = Body(...)):
        queries, prompts = body.get("query"), body.get("prompts")
        if not isinstance(queries, list) or not all(isinstance(q, str) for q in queries):
            return bad("request: 'query' must be a list of strings")
        if prompts is not None and (not isinstance(prompts, list) or len(prompts) != len(queries)
                                    or not all(isinstance(p, str) for p in prompts)):
            return bad(f"request: 'prompts' must be a list of {len(queries)} strings, one per query")
        texts = []
        for i, q in enumerate(queries):
            try:
                texts.append(split_query(q, prompts[i] if prompts else None, rm.tokenizer))
            except DataError as e:
                return bad(f"request: query {i + 1}: {e}")
        with lock:
            rewards, _ = rm.score_texts(texts, batch_size, max_tokens)
        return {"rewards": rewards, "score": rewards}  # OpenRLHF reads "rewards" (older versions: "score")

    return app


def serve(model: str, host: str = "127.0.0.1", port: int = 5000, batch_size: int = 16,
          max_tokens: int = 16384, max_length: int = 0, device: str = "", bf16: bool = False) -> None:
    import uvicorn

    rm = RewardModel.from_pretrained(model, max_length=max_length, device=device or None,
                                     dtype=torch.bfloat16 if bf16 else None)
    print(f"serving {model} on http://{host}:{port} (POST /score, POST /get_reward, GET /health)", flush=True)
    uvicorn.run(create_app(rm, model, batch_size, max_tokens), host=host, port=port, log_level="warning")
