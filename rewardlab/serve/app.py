"""Serve a reward model over HTTP (FastAPI + uvicorn), for an RL loop or anything else.

    rewardlab serve --model runs/rm            # http://127.0.0.1:5000

Endpoints:
- ``GET /health``: ``{"status": "ok", "model", "kind", "max_length"}`` (no token needed).
- ``POST /score``: ``{"rows": [...]}``, rows as ``rewardlab score`` reads them (prompt +
  completion, prompt + completions, chosen/rejected, prompt + steps; strings or chat
  messages). Answers ``{"rows": [... each with what score writes], "truncated": n}``.
- ``POST /get_reward``: OpenRLHF's remote reward-model protocol (``--remote_rm_url``):
  ``{"query": [prompt + response, ...], "prompts": [...], "labels": [...]}`` (only ``query``
  needed) -> ``{"rewards": [...], "scores": [...], "extra_logs": {...}}``.
- ``GET /metrics``: Prometheus text format (requests, errors by code, batch sizes, tokens per
  batch, the prefix-sharing ratio, queue wait and latency).

Concurrent requests are batched together (serve/batcher.py), and texts that start with the
same tokens share one encoding of that prefix: rewards equal ``RewardModel.score`` of each
text alone. Each text is scored in its group: a ``/score`` row's completions, a
``/get_reward`` request's queries of one prompt; a kind whose rewards compare texts (a pairwise
judge) compares a group's only, so requests batched together never mix. Score-time options
(``serve --aggregate prod``...) are the server's, the same as ``score``'s and the API's.
Safe by default: 127.0.0.1 unless ``--host``; a bearer token with
``--api-key-env``; limits on body size, items and tokens per item, each refused with one line
naming what is wrong (``{"error": "request: item 3: ..."}``); a bad request fails alone.
"""


import asyncio
import hmac
import json
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ..data.encode import encode_texts
from ..data.text import Text, check_unicode, plain_text
from ..errors import ConfigError, DataError
from ..inference.rows import add_rewards, build_groups
from ..models.prefix_cache import PrefixCache
from .drift import Drift
from .metrics import Metrics


def split_query(query: str, prompt: str | None, tokenizer) -> Text:
    """OpenRLHF sends whole texts; the prompt, when given, must be their start. A text rendered
    by the chat template is read as training read it (see data.text.plain_text)."""
    if prompt is not None and not query.startswith(prompt):
        raise DataError("query does not start with its prompt")
    check_unicode(query, "text", "the query")
    prompt = prompt or ""
    return plain_text(prompt, query[len(prompt):], tokenizer)


class Refused(Exception):
    """A request answered with an HTTP error and one line."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Limits:
    """What one request may hold (``serve``'s flags of the same names)."""

    max_body_bytes: int = 16 * 2**20
    max_items: int = 4096
    max_item_tokens: int = 32768


def authorized(headers, api_key: str | None) -> bool:
    """No token configured, or ``Authorization: Bearer KEY`` (compared in constant time)."""
    return api_key is None or hmac.compare_digest(headers.get("authorization", "").encode(),
                                                  f"Bearer {api_key}".encode())


async def read_json(request, limits: Limits) -> dict:
    """The body, refused past ``max_body_bytes`` before it is all read (413), or when it is not
    a JSON object (400)."""
    too_big = Refused(413, f"request: body larger than --max-body-bytes {limits.max_body_bytes}")
    if int(request.headers.get("content-length") or 0) > limits.max_body_bytes:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise too_big
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError) as e:
        raise Refused(400, f"request: the body is not valid JSON: {str(e).splitlines()[0]}") from None
    if not isinstance(body, dict):
        raise Refused(400, "request: the body must be a JSON object")
    return body


def query_texts(body: dict, tokenizer) -> list[Text]:
    """OpenRLHF's ``{"query": [...], "prompts": [...]}`` as texts, checked."""
    queries, prompts = body.get("query"), body.get("prompts")
    if not isinstance(queries, list) or not all(isinstance(q, str) for q in queries):
        unknown = sorted(set(body) - {"query", "prompts", "labels"})
        raise Refused(400, "request: 'query' must be a list of strings" + (
            f" (the body has no 'query'; unknown keys: {_named(unknown)})" if "query" not in body and unknown
            else ""))
    if prompts is not None and (not isinstance(prompts, list) or len(prompts) != len(queries)
                                or not all(isinstance(p, str) for p in prompts)):
        raise Refused(400, f"request: 'prompts' must be a list of {len(queries)} strings, one per query")
    texts = []
    for i, q in enumerate(queries):
        try:
            texts.append(split_query(q, prompts[i] if prompts else None, tokenizer))
        except DataError as e:
            raise Refused(400, f"request: query {i + 1}: {e}") from None
    return texts


def _named(keys: list[str]) -> str:
    """A request's unknown keys as one safe line: escaped (a key may hold any character), short."""
    shown = ", ".join(ascii(k)[1:-1][:40] for k in keys[:5])
    return shown + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")


def check_rows(body: dict, limits: Limits) -> list[dict]:
    """``/score``'s rows, refused before any per-row work when there are too many."""
    rows = body.get("rows")
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        unknown = sorted(set(body) - {"rows"})
        raise Refused(400, "request: 'rows' must be a non-empty list of objects" + (
            f" (the body has no 'rows'; unknown keys: {_named(unknown)})" if "rows" not in body and unknown else ""))
    items = sum(1 + sum(len(r[k]) for k in ("completions", "chosen", "rejected", "steps")
                        if isinstance(r.get(k), list)) for r in rows)  # an upper bound, counted first
    if len(rows) > limits.max_items:
        raise Refused(413, f"request: {len(rows)} rows, more than --max-items {limits.max_items}")
    if items > 4 * limits.max_items:
        raise Refused(413, f"request: {items} completions and steps, more than 4 x --max-items {limits.max_items}")
    return rows


class Service:
    """What the endpoints do: check a request, admit its texts, score them in the shared
    batcher, and shape the answer. ``normalize``: (r - mean) / std with the training statistics
    saved in the model (``train --reward-stats``)."""

    def __init__(self, rm, cfg, limits: Limits):
        from .batcher import Batcher

        stats = rm.reward_stats
        if cfg.normalize and stats is None:
            raise ConfigError(f"{cfg.model or 'the model'} has no saved reward statistics: train it with "
                              "--reward-stats")
        # An ensemble's members are read on every request, so each one's drift is watched; they are
        # answered only when asked for.
        self.hide_members = getattr(rm, "members", None) is not None and not rm.options.members
        rm = rm.with_options(rm.options, members=True) if self.hide_members else rm
        self.rm, self.limits, self.metrics = rm, limits, Metrics()
        self.drift = Drift.of(rm, cfg.drift_threshold, cfg.drift_log, cfg.drift_log_mb, cfg.drift_window)
        self.batch_size, self.max_tokens, self.prefix_sharing = cfg.batch_size, cfg.max_batch_tokens, cfg.prefix_sharing
        self.norm = (stats.mean, stats.std or 1.0) if cfg.normalize else None
        # The served model no longer trains, so its keys and values keep (used by the model thread only).
        self.cache = PrefixCache(int(cfg.prefix_cache_mb * 2**20)) \
            if cfg.prefix_sharing and cfg.prefix_cache_mb > 0 else None
        self.last_counts = None  # the model thread's last batch (tokens sent and processed), for metrics
        self.batcher = Batcher(self.run_batch, cfg.max_batch_tokens, cfg.max_wait_ms / 1000, cfg.batching,
                               self.on_batch)

    def run_batch(self, items: list) -> list[dict]:
        """``items``: (text, its encoding, its group) from :meth:`admit`: the model thread does not
        tokenize again, and texts are scored in their request's groups."""
        texts, encoded, groups, seen = [t for t, _, _ in items], [e for _, e, _ in items], [], {}
        for i, (_, _, key) in enumerate(items):
            if key not in seen:
                seen[key] = len(groups)
                groups.append([])
            groups[seen[key]].append(i)
        details, self.last_counts = self.rm.score_details(texts, self.batch_size, self.max_tokens,
                                                          self.prefix_sharing, encoded, self.cache, groups)
        if self.drift is not None:
            self.drift.add(details, [len(e[0]) for e in encoded])
        if self.hide_members:
            for d in details:
                d.pop("members", None)
        if self.norm is not None:
            mean, std = self.norm
            for d in details:
                d["reward"] = None if d["reward"] is None else (d["reward"] - mean) / std  # None: nothing read
        return details

    def on_batch(self, jobs, started: float) -> None:
        sent, counts = sum(j.tokens for j in jobs), self.last_counts
        # The scalar path counts what it processed (prefixes once); the others process all they get.
        processed = counts.processed * sent / counts.sent if counts is not None and counts.sent else sent
        self.metrics.batch(len(jobs), sum(len(j.texts) for j in jobs), sent, round(processed),
                           [started - j.arrived for j in jobs], time.perf_counter() - started)
        self.metrics.cache(self.cache)

    async def admit(self, texts: list[Text], where: list[str], groups: list) -> list[tuple]:
        """Tokenize every text off the event loop (once: scoring uses these); refuse an item over
        the limits. Returns (text, its encoding, its group) per text; ``groups[i]``: a key no other
        request's text has, shared by the texts scored together (a row's completions)."""
        most = self.limits.max_item_tokens
        if len(texts) > self.limits.max_items:
            raise Refused(413, f"request: {len(texts)} items, more than --max-items {self.limits.max_items}")
        for t, at in zip(texts, where):  # cheap first: a huge string is refused before tokenizing
            if len(t.prompt) + len(t.completion) > 16 * most:
                raise Refused(422, f"request: {at}: longer than --max-item-tokens {most}")
        encoded = await asyncio.get_running_loop().run_in_executor(None, encode_texts, self.rm.tokenizer, texts)
        for (ids, *_), at in zip(encoded, where):
            if len(ids) > most:
                raise Refused(422, f"request: {at}: {len(ids)} tokens, more than --max-item-tokens {most}")
            if not ids:  # an empty text, with a tokenizer that adds no special tokens: nothing to read
                raise Refused(422, f"request: {at}: no tokens (an empty text)")
        return [(t, e[:3], g) for t, e, g in zip(texts, encoded, groups)]  # not the character spans

    async def score_rows(self, body: dict) -> dict:
        rm, rows = self.rm, check_rows(body, self.limits)
        # Checking rows (chat templates, pairs) is real work: off the event loop.
        groups, fields = await asyncio.get_running_loop().run_in_executor(
            None, lambda: build_groups(rows, rm.tokenizer, "request", chat=rm.chat, marker=rm.step_marker or "\n"))
        flat = [t for g in groups for t in g]
        keys = [object() for _ in groups]
        items = await self.admit(flat, [f"row {i + 1}" for i, g in enumerate(groups) for _ in g],
                                 [keys[i] for i, g in enumerate(groups) for _ in g])
        lengths = [len(e[0]) for _, e, _ in items]
        details = await self.batcher.submit(items, sum(lengths)) if flat else []
        out, at = [], 0
        for row, field, g in zip(rows, fields, groups):
            part = details[at:at + len(g)]
            at += len(g)
            out.append(add_rewards(row, field, [d["reward"] for d in part], part))
        return {"rows": out, "truncated": sum(n > rm.max_length for n in lengths)}

    async def get_reward(self, body: dict) -> dict:
        texts = query_texts(body, self.rm.tokenizer)
        keys: dict[str, object] = {}  # this request's queries of one prompt are scored together
        items = await self.admit(texts, [f"query {i + 1}" for i in range(len(texts))],
                                 [keys.setdefault(t.prompt, object()) for t in texts])
        tokens = sum(len(e[0]) for _, e, _ in items)
        details = await self.batcher.submit(items, tokens) if texts else []
        rewards = [d["reward"] for d in details]
        # OpenRLHF reads "scores" first, then "rewards" (older versions: "score"); it logs the
        # mean of each extra_logs list: here every number the model's kind reads besides the reward.
        return {"rewards": rewards, "scores": rewards, "score": rewards, "extra_logs": extra_logs(details)}


def extra_logs(details: list[dict]) -> dict[str, list]:
    """Per-item numbers of the kind's readout other than the reward (a verifier's p_yes and p_no,
    ...), one list each, for an RL loop's logs; lists and strings (step rewards, names) are left out."""
    def number(v):
        return v is None or isinstance(v, (int, float)) and not isinstance(v, bool)
    keys = [k for k in (details[0] if details else {}) if k != "reward"]
    return {k: [d.get(k) for d in details] for k in keys if all(number(d.get(k)) for d in details)}


def build_app(rm, cfg, api_key: str | None = None):
    """The FastAPI application around a loaded :class:`rewardlab.RewardModel` (see :class:`Service`);
    ``cfg``: a :class:`rewardlab.config.ServeConfig` (its batching, limits and cache settings)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response

    name = cfg.model
    limits = Limits(cfg.max_body_bytes, cfg.max_items, cfg.max_item_tokens)
    service = Service(rm, cfg, limits)
    refused_token = Refused(401, "missing or wrong bearer token (Authorization: Bearer KEY)")

    @asynccontextmanager
    async def lifespan(app):
        service.batcher.start()
        yield
        await service.batcher.stop()  # SIGTERM: uvicorn stops accepting, in-flight requests finish first

    app = FastAPI(title="rewardlab reward model", description=f"Rewards from {name or 'a reward model'}.",
                  lifespan=lifespan)

    def answer(e: Refused, endpoint: str) -> JSONResponse:
        service.metrics.error(endpoint, e.status)
        return JSONResponse(status_code=e.status, content={"error": str(e)})

    async def handle(endpoint: str, request: Request, work):
        started = time.perf_counter()
        try:
            if not authorized(request.headers, api_key):
                raise refused_token
            result = await work(await read_json(request, limits))
        except Refused as e:
            return answer(e, endpoint)
        except DataError as e:
            return answer(Refused(400, str(e)), endpoint)
        service.metrics.request(endpoint, time.perf_counter() - started)
        return result

    @app.get("/health")
    async def health() -> dict:
        norm = service.norm and {"mean": service.norm[0], "std": service.norm[1]}
        drift = service.drift.report() if service.drift is not None else None
        return {"status": "ok", "model": name, "kind": rm.kind, "max_length": rm.max_length, "normalized": norm,
                "drift": drift}

    @app.get("/metrics")
    async def prometheus(request: Request):
        if not authorized(request.headers, api_key):
            return answer(refused_token, "/metrics")
        service.metrics.drift(service.drift.report() if service.drift is not None else None)
        return Response(service.metrics.text(), media_type="text/plain; version=0.0.4")

    @app.post("/score")
    async def score(request: Request):
        return await handle("/score", request, service.score_rows)

    @app.post("/get_reward")
    async def reward(request: Request):
        return await handle("/get_reward", request, service.get_reward)

    return app
