"""Where judgments come from: a local ``transformers`` causal LM, or any OpenAI-compatible
chat-completions server (vLLM, SGLang, llama.cpp server, OpenAI).

Both take chat conversations and return one :class:`Reply` per conversation, calling
``on_done(index, reply)`` as each finishes so the caller can cache it at once. A failure of
one request (timeout, retries used up, prompt too long) is a Reply with ``error`` set, counted
by the caller; a failure that would hit every request (bad URL path, bad key) raises
:class:`JudgeError` at once.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

import torch

from ..errors import JudgeError


@dataclass
class Reply:
    text: str | None = None
    cut: bool = False  # stopped at the token limit before the model ended its answer
    error: str | None = None
    probs: list[float] | None = None  # soft verdicts: probability of each option


class _Steps:
    """A stopping criterion that never stops: it reports each generation step (progress)."""

    def __init__(self, start: int, on_step):
        self.start, self.on_step = start, on_step

    def __call__(self, input_ids, scores, **kwargs):
        self.on_step(input_ids.shape[1] - self.start)
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def render(tokenizer, conversation: list[dict], name: str = "", answer: str | None = None) -> str:
    """The conversation through the model's chat template, ending where the judge's answer
    starts (or, given ``answer``, with that assistant turn written out and closed). Templates
    that refuse a system turn (Gemma) get the system text at the head of the first user turn."""
    turns = conversation + ([{"role": "assistant", "content": answer}] if answer is not None else [])
    try:
        return tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=answer is None)
    except Exception as e:  # jinja's TemplateError
        if conversation and conversation[0]["role"] == "system" and len(conversation) > 1:
            first = {"role": conversation[1]["role"],
                     "content": conversation[0]["content"] + "\n\n" + conversation[1]["content"]}
            return render(tokenizer, [first] + conversation[2:], name, answer)
        raise JudgeError(f"judge model {name!r}: its chat template failed: {str(e).splitlines()[0]}") from None


def option_token_ids(tokenizer, prefix: str, options: list[str]) -> list[int]:
    """Token ids of each option right after ``prefix``; each must be a single token there."""
    probe = "x" + prefix
    base = tokenizer(probe, add_special_tokens=False)["input_ids"]
    ids = []
    for opt in options:
        full = tokenizer(probe + opt, add_special_tokens=False)["input_ids"]
        if full[:len(base)] != base or len(full) != len(base) + 1:
            raise JudgeError(f"soft verdicts need {opt!r} to be one token after {prefix!r} for this "
                             "tokenizer; use generated verdicts instead")
        ids.append(full[-1])
    return ids


class LocalJudge:
    """A causal LM with a chat template, greedy (temperature 0) batched generation."""

    def __init__(self, name: str = "smollm2", device: str | None = None, batch_size: int = 8,
                 max_new_tokens: int = 256, trust_remote_code: bool = False):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ..models.backbone import ModelError, resolve

        path = resolve(name) if name != "minilm" else name
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
            self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32,
                                                              trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as e:
            raise ModelError(f"cannot load judge model {name!r}: {str(e).splitlines()[0]}") from None
        if not getattr(self.tokenizer, "chat_template", None):
            raise ModelError(f"judge model {name!r} has no chat template; use an instruction-tuned model")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device).eval()
        self.tokenizer.padding_side = "left"  # generation continues from the right end
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.batch_size, self.max_new_tokens = batch_size, max_new_tokens
        self.context = getattr(self.model.config, "max_position_embeddings", None) or 10**9
        self.name = name
        # The cache key names the weights too: a retrained judge at the same path is another judge.
        self.identity = f"local:{name}:{_files_fingerprint(path)}"

    def _render(self, conversation: list[dict]) -> str:
        return render(self.tokenizer, conversation, self.name)

    def _encode(self, conversations: list[list[dict]], suffix: str = "") -> list[list[int]]:
        texts = [self._render(c) + suffix for c in conversations]
        # The template already wrote the special tokens (BOS, turn markers).
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

    def _batches(self, ids: list[list[int]], room: int):
        """Index batches in length order (less padding); too-long prompts come out alone as errors."""
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        ok = [i for i in order if len(ids[i]) + room <= self.context]
        for i in order:
            if len(ids[i]) + room > self.context:
                yield [i], f"prompt has {len(ids[i])} tokens; with {room} to generate it exceeds the " \
                           f"model's context of {self.context}"
        for s in range(0, len(ok), self.batch_size):
            yield ok[s:s + self.batch_size], None

    def _pad(self, rows: list[list[int]]):
        width = max(map(len, rows))
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=self.device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=self.device)
        return ids, mask

    @torch.no_grad()
    def generate(self, conversations, temperature: float = 0.0, seed: int = 0, on_done=None,
                 prefix: str = "", max_new_tokens: int = 0, on_step=None) -> list[Reply]:
        """One reply per conversation. ``prefix`` starts the assistant's answer (it is part of
        the returned text); ``max_new_tokens`` overrides the judge's limit. ``on_step(n)``: called
        after each generated token of a batch (n so far), so a slow batch shows progress."""
        from transformers import GenerationConfig, StoppingCriteriaList

        max_new_tokens = max_new_tokens or self.max_new_tokens
        ids = self._encode(conversations, prefix)
        eos = self.model.generation_config.eos_token_id or self.tokenizer.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos])
        config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=temperature > 0,
                                  temperature=temperature if temperature > 0 else None, top_p=None, top_k=None,
                                  pad_token_id=self.tokenizer.pad_token_id, eos_token_id=sorted(eos))
        out: list[Reply | None] = [None] * len(ids)
        for batch, problem in self._batches(ids, max_new_tokens):
            if problem:
                replies = [Reply(error=problem)]
            else:
                torch.manual_seed(seed)  # sampled judgments (temperature > 0) are reproducible too
                input_ids, mask = self._pad([ids[i] for i in batch])
                watch = StoppingCriteriaList([_Steps(input_ids.shape[1], on_step)]) if on_step else None
                new = self.model.generate(input_ids=input_ids, attention_mask=mask, generation_config=config,
                                          stopping_criteria=watch)[:, input_ids.shape[1]:].tolist()
                replies = []
                for row in new:
                    ended = next((k for k, t in enumerate(row) if t in eos), None)
                    kept = row if ended is None else row[:ended]
                    replies.append(Reply((prefix + self.tokenizer.decode(kept, skip_special_tokens=True)).strip(),
                                         cut=ended is None))
            for i, reply in zip(batch, replies):
                out[i] = reply
                if on_done:
                    on_done(i, reply)
        return out

    def option_ids(self, prefix: str, options: list[str]) -> list[int]:
        return option_token_ids(self.tokenizer, prefix, options)

    @torch.no_grad()
    def choice_probs(self, conversations, prefix: str, options: list[str], on_done=None) -> list[Reply]:
        """Next-token probabilities of ``options`` after the assistant starts its answer with
        ``prefix`` (e.g. "[[" then A / B / C): a verdict without generation. ``probs`` is
        renormalised over the options; ``text`` records the options' share of the full
        distribution (how much the model wanted to answer in format)."""
        wanted = self.option_ids(prefix, options)
        ids = self._encode(conversations, prefix)
        out: list[Reply | None] = [None] * len(ids)
        for batch, problem in self._batches(ids, 0):
            if problem:
                replies = [Reply(error=problem)]
            else:
                input_ids, mask = self._pad([ids[i] for i in batch])
                position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
                logits = self.model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids,
                                    logits_to_keep=1).logits[:, -1].float()  # not the whole vocab x length
                full = logits.log_softmax(-1)[:, wanted].exp()
                replies = [Reply(text=f"{float(p.sum()):.6f}", probs=(p / p.sum()).tolist()) for p in full]
            for i, reply in zip(batch, replies):
                out[i] = reply
                if on_done:
                    on_done(i, reply)
        return out


def _files_fingerprint(path: str) -> str:
    """Names, sizes and modification times of a model folder's files (cheap, no hashing of weights)."""
    import hashlib
    from pathlib import Path

    folder = Path(path)
    if not folder.is_dir():
        return path
    parts = [f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in sorted(folder.iterdir()) if f.is_file()]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
# Answers about one request (prompt too long for the context, bad content): that judgment fails.
REQUEST_STATUS = {400, 413, 422}


class OpenAIJudge:
    """Any OpenAI-compatible ``/chat/completions`` endpoint, ``concurrency`` requests at a time.

    Retries timeouts, connection errors and 408/409/429/5xx with exponential backoff (honouring
    ``Retry-After``); other 4xx answers (bad key, unknown model, bad path) stop the run with the
    server's message, since every request would fail the same way.
    """

    def __init__(self, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY", concurrency: int = 8,
                 timeout: float = 60.0, max_retries: int = 5, backoff: float = 1.0, max_new_tokens: int = 256):
        import httpx

        if not base_url:
            raise JudgeError("the openai backend needs --base-url (e.g. http://localhost:8000/v1)")
        if not model:
            raise JudgeError("the openai backend needs --model: the model name the server serves")
        self.url = base_url.rstrip("/") + "/chat/completions"
        key = os.environ.get(api_key_env, "") if api_key_env else ""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(timeout=timeout, headers=headers,
                                   limits=httpx.Limits(max_connections=concurrency))
        self.model, self.concurrency, self.max_new_tokens = model, concurrency, max_new_tokens
        self.max_retries, self.backoff = max_retries, backoff
        self.retries = 0  # transport-level retries made, reported by the caller
        self.stopping = threading.Event()  # set on Ctrl-C / a fatal answer: workers stop retrying
        self.identity = f"openai:{base_url.rstrip('/')}:{model}"

    def _one(self, messages: list[dict], temperature: float, seed: int) -> Reply:
        import httpx

        body = {"model": self.model, "messages": messages, "temperature": temperature,
                "max_tokens": self.max_new_tokens, "seed": seed}
        problem = ""
        for attempt in range(self.max_retries + 1):
            if self.stopping.is_set():
                return Reply(error="stopped")
            if attempt:
                self.retries += 1
            wait = self.backoff * 2 ** attempt
            try:
                r = self.client.post(self.url, json=body)
            except httpx.TimeoutException:
                problem = "timed out"
            except httpx.TransportError as e:
                problem = f"connection failed: {type(e).__name__}: {e}"
            else:
                if r.status_code == 200:
                    try:
                        choice = r.json()["choices"][0]
                        return Reply(str(choice["message"]["content"] or "").strip(),
                                     cut=choice.get("finish_reason") == "length")
                    except (ValueError, KeyError, IndexError, TypeError):
                        problem = f"malformed response: {r.text[:200]!r}"
                elif r.status_code in RETRY_STATUS:
                    problem = f"HTTP {r.status_code}: {r.text[:200]}"
                    after = r.headers.get("retry-after", "")
                    wait = float(after) if after.replace(".", "", 1).isdigit() else wait
                elif r.status_code in REQUEST_STATUS:  # e.g. a prompt longer than the server's context
                    return Reply(error=f"HTTP {r.status_code}: {r.text[:300].strip()}")
                else:  # 401, 403, 404: every request would fail the same way
                    raise JudgeError(f"{self.url}: HTTP {r.status_code}: {r.text[:300].strip()}")
            if attempt < self.max_retries and not self.stopping.wait(min(wait, 60.0)):
                continue
            if self.stopping.is_set():
                return Reply(error="stopped")
        return Reply(error=f"{problem} (after {self.max_retries} retries)")

    def generate(self, conversations, temperature: float = 0.0, seed: int = 0, on_done=None,
                 prefix: str = "", max_new_tokens: int = 0) -> list[Reply]:
        """``prefix`` is ignored: starting the assistant's answer is not part of the OpenAI protocol."""
        out: list[Reply | None] = [None] * len(conversations)
        self.stopping.clear()
        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        futures = {pool.submit(self._one, c, temperature, seed): i for i, c in enumerate(conversations)}
        try:
            for f in as_completed(futures):
                i = futures[f]
                out[i] = f.result()  # a JudgeError raised in a worker stops the run here
                if on_done:
                    on_done(i, out[i])
        except BaseException:  # also Ctrl-C: drop queued requests, stop retries, do not wait
            self.stopping.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        return out

    def choice_probs(self, *args, **kwargs):
        raise JudgeError("soft verdicts need the local backend (next-token probabilities)")
