"""Generative reward models: judge completions with a language model (LLM-as-a-judge).

Pipeline: read rows -> render judge prompts -> ask the backend (cached on disk) -> parse
strictly, re-asking once for the verdict alone when the answer has none -> combine orders ->
write preference pairs (RLAIF data ``rewardlab train`` reads) and agreement metrics.

Position bias (Zheng et al. 2023): ``position="both"`` judges each pair in both orders; two
different verdicts, or a tie in either, make a tie (FastChat). ``"random"`` shows one seeded
random order (RewardBench); ``"first"`` shows the data's order. Verdicts are mapped back to
answers through the order that was shown, never by arithmetic on labels (TRL's removed judges
flipped a failed -1 into 2).
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import time
from pathlib import Path

from .backends import Reply
from .data import Item
from .prompts import REPAIR, REPAIR_PREFIX, ParseError, Template, parse_pairwise, parse_rating

SOFT_PREFIX, SOFT_OPTIONS = "[[", ["A", "B", "C"]


# ---------------------------------------------------------------- cache

class Cache:
    """Judge replies on disk, one JSON line each, appended and flushed as they arrive: an
    interrupted run loses only what was in flight, and a rerun with the same settings calls
    nothing. A half-written last line (killed mid-write) is ignored."""

    def __init__(self, path: str | None):
        self.path, self.entries, self.hits = path, {}, 0
        if path and Path(path).exists():
            # errors="replace": a line cut inside a multi-byte character must not stop the run
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    try:
                        entry = json.loads(line)
                        self.entries[entry["key"]] = entry["reply"]
                    except (ValueError, KeyError, TypeError):
                        continue
        self._file = None

    def get(self, key: str) -> Reply | None:
        found = self.entries.get(key)
        return Reply(**found) if found is not None else None

    def put(self, key: str, reply: Reply) -> None:
        if reply.error:  # a failed request is retried by the next run, not remembered
            return
        self.entries[key] = vars(reply)
        if self.path:
            if self._file is None:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                ends_cut = False
                if Path(self.path).exists() and Path(self.path).stat().st_size:
                    with open(self.path, "rb") as f:
                        f.seek(-1, 2)
                        ends_cut = f.read(1) != b"\n"
                self._file = open(self.path, "a", encoding="utf-8")
                if ends_cut:  # end a half-written last line, or the next entry joins it
                    self._file.write("\n")
            self._file.write(json.dumps({"key": key, "reply": vars(reply)}, ensure_ascii=False) + "\n")
            self._file.flush()


class Runner:
    """Sends conversations to a backend through the cache, with a progress bar."""

    def __init__(self, backend, cache: Cache, temperature: float = 0.0, seed: int = 0, progress: bool = True):
        self.backend, self.cache, self.temperature, self.seed = backend, cache, temperature, seed
        self.progress, self.calls, self.seconds, self.asked = progress, 0, 0.0, 0

    def key(self, messages: list[dict], soft: bool, prefix: str = "", max_new_tokens: int = 0) -> str:
        settings = {"judge": self.backend.identity, "messages": messages, "temperature": self.temperature,
                    "seed": self.seed, "max_new_tokens": max_new_tokens or getattr(self.backend, "max_new_tokens", None),
                    "soft": [SOFT_PREFIX, SOFT_OPTIONS] if soft else None, "prefix": prefix}
        return hashlib.sha256(json.dumps(settings, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def run(self, conversations: list[list[dict]], soft: bool = False, desc: str = "judging", prefix: str = "",
            max_new_tokens: int = 0) -> list[Reply]:
        from tqdm.auto import tqdm

        self.asked += len(conversations)
        keys = [self.key(c, soft, prefix, max_new_tokens) for c in conversations]
        out = [self.cache.get(k) for k in keys]
        todo = [i for i, r in enumerate(out) if r is None]
        self.cache.hits += len(out) - len(todo)
        if not todo:
            return out
        bar = tqdm(total=len(out), initial=len(out) - len(todo), desc=desc, unit="judgment",
                   disable=not self.progress, file=sys.stderr)

        def done(j: int, reply: Reply) -> None:
            out[todo[j]] = reply
            self.cache.put(keys[todo[j]], reply)
            bar.update(1)

        start = time.perf_counter()
        batch = [conversations[i] for i in todo]
        try:
            if soft:
                self.backend.choice_probs(batch, SOFT_PREFIX, SOFT_OPTIONS, on_done=done)
            else:
                limit = max_new_tokens or getattr(self.backend, "max_new_tokens", 0)

                def step(n: int) -> None:  # a local batch generates for minutes: show its tokens
                    bar.set_postfix_str(f"batch token {n}/{limit}", refresh=n % 16 == 0)

                extra = {"on_step": step} if self.progress and "on_step" in _parameters(self.backend.generate) else {}
                self.backend.generate(batch, self.temperature, self.seed, on_done=done, prefix=prefix,
                                      max_new_tokens=max_new_tokens, **extra)
        finally:
            bar.close()
            self.seconds += time.perf_counter() - start
            self.calls += sum(out[i] is not None for i in todo)
        return out


def _parameters(fn) -> set[str]:
    import inspect

    return set(inspect.signature(fn).parameters)


# ---------------------------------------------------------------- judging

def orders(item: Item, position: str, seed: int) -> list[tuple[int, int]]:
    """Which answer is shown as A and which as B, for each judgment of a pair."""
    if position == "both":
        return [(0, 1), (1, 0)]
    if position == "random":  # seeded per row: the same row gets the same order on every run
        return [(1, 0)] if random.Random(f"{seed}:{item.row}").random() < 0.5 else [(0, 1)]
    return [(0, 1)]


def winner_of(order: tuple[int, int], verdict: str | None) -> int | None:
    """Index of the better answer (0 or 1) from a verdict on the order shown; -1 tie; None error."""
    if verdict is None:
        return None
    return {"A": order[0], "B": order[1], "C": -1}[verdict]


def combine(winners: list[int | None]) -> int | None:
    """FastChat's rule over the orders judged: any error -> error; disagreement or any tie -> tie."""
    if any(w is None for w in winners):
        return None
    return winners[0] if all(w == winners[0] for w in winners) else -1


def judge_items(items: list[Item], template: Template, runner: Runner, position: str = "both",
                soft: bool = False, parse_retries: int = 1, seed: int = 0) -> dict:
    """Judge every item in place (``item.judgments``, ``item.winner``, ``item.confidence``)."""
    calls: list[tuple[Item, dict, list[dict]]] = []  # (item, judgment record, messages)
    for item in items:
        if template.mode == "single":
            for k, answer in enumerate(item.answers):
                rec = {"answer": k}
                calls.append((item, rec, template.messages(question=item.question, answer=answer,
                                                           reference=item.reference)))
        else:
            for order in orders(item, position, seed):
                rec = {"order": "".join("12"[k] for k in order)}
                calls.append((item, rec, template.messages(question=item.question, answer_a=item.answers[order[0]],
                                                           answer_b=item.answers[order[1]],
                                                           reference=item.reference)))
    replies = runner.run([c[2] for c in calls], soft=soft)
    parse = parse_rating if template.mode == "single" else parse_pairwise
    stats = {"repair_asked": 0, "repair_fixed": 0, "cut": 0}
    for (item, rec, _), reply in zip(calls, replies):
        rec["raw"] = reply.text
        if reply.error:
            rec["error"] = reply.error
        elif soft:
            rec["probs"] = dict(zip(SOFT_OPTIONS, reply.probs))
        else:
            stats["cut"] += reply.cut
            try:
                rec["verdict"] = parse(reply.text)
            except ParseError as e:
                rec["error"] = f"unparsable: {e}"
        item.judgments.append(rec)
    # Re-ask for the verdict alone (a deterministic repair turn, not a resample at temperature 0).
    pending = [c for c in calls if "error" in c[1] and c[1]["error"].startswith("unparsable")]
    for _ in range(parse_retries if not soft else 0):
        if not pending:
            break
        stats["repair_asked"] += len(pending)
        convs = [m + [{"role": "assistant", "content": rec["raw"] or ""},
                      {"role": "user", "content": REPAIR[template.mode]}] for _, rec, m in pending]
        still = []
        # The local backend starts the answer with the marker ("[[" / "Rating: [["), so even a
        # small model answers in format; a server gets the request alone.
        again = runner.run(convs, desc="re-asking", prefix=REPAIR_PREFIX[template.mode], max_new_tokens=16)
        for (item, rec, m), reply in zip(pending, again):
            rec["repair"] = reply.text
            try:
                rec["verdict"] = parse(reply.text) if not reply.error else None
                if rec["verdict"] is None:
                    raise ParseError(reply.error)
                rec.pop("error")
                stats["repair_fixed"] += 1
            except ParseError as e:
                rec["error"] = f"unparsable: {e}"
                still.append((item, rec, m))
        pending = still
    for item in items:
        decide(item, template.mode, soft)
    return stats


def decide(item: Item, mode: str, soft: bool) -> None:
    """Set ``item.winner`` (0/1 = index of the better answer, -1 tie, None error or not a
    pair), ``item.error``, the confidence, and whether the orders agreed (``item.consistent``,
    None where not measurable)."""
    js = item.judgments
    item.error = any("error" in j for j in js)
    item.winner, item.confidence, item.consistent = None, 0.0, None
    if mode == "single":
        item.ratings = [j.get("verdict") for j in js]
        if not item.error and len(js) == 2:
            r = item.ratings
            item.winner = 0 if r[0] > r[1] else 1 if r[1] > r[0] else -1
            item.confidence = abs(r[0] - r[1]) / 9  # rating gap on the 1..10 scale
        return
    if item.error:
        return
    order_of = [tuple(int(c) - 1 for c in j["order"]) for j in js]
    if soft:
        p = [0.0, 0.0]  # probability that each answer is the better one, averaged over orders
        for order, j in zip(order_of, js):
            p[order[0]] += j["probs"]["A"] / len(js)
            p[order[1]] += j["probs"]["B"] / len(js)
        item.p_first = p[0] / (p[0] + p[1]) if p[0] + p[1] > 0 else 0.5  # all mass on C: a tie
        item.winner = 0 if p[0] > p[1] else 1 if p[1] > p[0] else -1
        item.confidence = max(item.p_first, 1 - item.p_first)
        picks = {order[0] if j["probs"]["A"] > j["probs"]["B"] else order[1] for order, j in zip(order_of, js)}
        item.consistent = len(picks) == 1 if len(js) > 1 else None
        return
    winners = [winner_of(o, j["verdict"]) for o, j in zip(order_of, js)]
    item.winner = combine(winners)
    item.confidence = 1.0 if item.winner in (0, 1) else 0.0
    item.consistent = len(set(winners)) == 1 if len(js) > 1 else None


# ---------------------------------------------------------------- results

def agreement(items: list[Item]) -> dict:
    """Agreement with the human labels (answers[0] is the human choice), with and without ties."""
    n = len(items)
    wins = sum(i.winner == 0 for i in items)
    ties = sum(i.winner == -1 for i in items)
    errors = sum(i.error for i in items)
    decided = sum(i.winner in (0, 1) for i in items)
    measured = [i.consistent for i in items if i.consistent is not None]
    out = {
        "n": n,
        "agreement": wins / n,
        "agreement_without_ties": wins / decided if decided else None,
        # RewardBench scoring: a tie or an error counts half
        "agreement_ties_half": (wins + 0.5 * (n - decided)) / n,
        "position_consistency": sum(measured) / len(measured) if measured else None,
        "ties": ties,
        "errors": errors,
        "error_rate": errors / n,
    }
    if all(hasattr(i, "p_first") for i in items if not i.error) and any(hasattr(i, "p_first") for i in items):
        probs = [i.p_first for i in items if not i.error]
        out["mean_p_human"] = sum(probs) / len(probs)
    return out


# ---------------------------------------------------------------- Python API

class Judge:
    """LLM-as-a-judge from Python, with the CLI's prompts, parsing, position control and cache.

        judge = Judge()                                    # the bundled SmolLM2, local
        judge = Judge("my-model", base_url="http://localhost:8000/v1")   # any OpenAI-compatible server
        judge.compare("What is 2 + 2?", "4", "5")          # {"winner": "a", "confidence": 1.0, ...}
        judge.grade("What is 2 + 2?", "4")                 # 9.0 (None if no rating could be parsed)

    ``winner`` is "a", "b", "tie" or None (the judge gave no usable verdict; see ``judgments``).
    """

    def __init__(self, model: str = "smollm2", base_url: str = "", template: str = "", position: str = "both",
                 soft: bool = False, reference: bool = False, temperature: float = 0.0, parse_retries: int = 1,
                 cache: str | None = None, seed: int = 0, **backend_options):
        from .backends import LocalJudge, OpenAIJudge
        from .prompts import load_template, template_mode

        self.backend = OpenAIJudge(base_url, model, **backend_options) if base_url else \
            LocalJudge(model, **backend_options)
        self.runner = Runner(self.backend, Cache(cache), temperature, seed, progress=False)
        mode = template_mode(template) if template else ""
        self.pair_template = load_template(template if mode == "pairwise" else "", "pairwise", reference)
        self.single_template = load_template(template if mode == "single" else "", "single", reference)
        self.position, self.soft, self.parse_retries, self.seed = position, soft, parse_retries, seed

    def compare_many(self, questions: list[str], answers_a: list[str], answers_b: list[str],
                     references: list[str] | None = None) -> list[dict]:
        items = [Item(i + 1, q, [a, b], q, [a, b], reference=(references or [""] * len(questions))[i])
                 for i, (q, a, b) in enumerate(zip(questions, answers_a, answers_b))]
        judge_items(items, self.pair_template, self.runner, self.position, self.soft, self.parse_retries, self.seed)
        names = {0: "a", 1: "b", -1: "tie", None: None}
        return [{"winner": names[i.winner], "confidence": i.confidence, "consistent": i.consistent,
                 **({"p_a": i.p_first} if hasattr(i, "p_first") else {}), "judgments": i.judgments} for i in items]

    def compare(self, question: str, answer_a: str, answer_b: str, reference: str = "") -> dict:
        return self.compare_many([question], [answer_a], [answer_b], [reference])[0]

    def grade_many(self, questions: list[str], answers: list[str], references: list[str] | None = None) -> list:
        items = [Item(i + 1, q, [a], q, [a], reference=(references or [""] * len(questions))[i])
                 for i, (q, a) in enumerate(zip(questions, answers))]
        judge_items(items, self.single_template, self.runner, parse_retries=self.parse_retries)
        return [i.ratings[0] for i in items]

    def grade(self, question: str, answer: str, reference: str = "") -> float | None:
        return self.grade_many([question], [answer], [reference])[0]
