"""Kind ``judge``: a pairwise judge trained as a reward model (MT-Bench's pairwise prompt; in the
line of GenRM, Mahan et al. 2024, arXiv 2410.12832, and Prometheus).

The model keeps its language-model head. Each training pair is shown with MT-Bench's pairwise
prompt (``rewardlab judge``'s ``pair-v2``, or ``--judge-template``) through the backbone's
chat template, in BOTH orders, and the model is trained with next-token cross-entropy on its
answer ``[[A]]`` / ``[[B]]`` (``[[C]]`` for pairs the data ties) and the end of its turn:

    loss(pair) = sum over the two orders, over the answer's tokens t of  -log p(t | prompt, t<)

The verdict letter is what is measured (``accuracy``: its arg-max among A, B, C); the format
tokens around it are trained too, so the folder *generates* a parsable verdict in
``rewardlab judge --model DIR`` (and ``--soft`` reads the letter after "[[" exactly where
training supervised it). A pair row's ``rationale`` (a judgment written for chosen shown as
Assistant A; the swapped order gets it with the two names swapped) is trained before the verdict,
the mean cross-entropy of its tokens added to the answer's, as in GenRM-CoT; scoring still reads
the verdict right after the prompt. Unit: one order of one pair.

Rewards for an RL loop: the K completions of one prompt are compared in every ordered pair
(K (K - 1) forwards that share the prompt's tokens). With P(x beats y) = (p_A + p_C / 2) when x
is shown first (letters renormalised over A, B, C), averaged with the swapped order, a
completion's reward is (``--judge-reward``)

- ``win_rate``: the mean over the others y of P(x beats y), in [0, 1] (NeMo-RL's pairwise
  GenRM environment averages its pairwise scores in the same way);
- ``bradley_terry``: strengths s maximising sum_{x != y} P(x beats y) log sigma(s_x - s_y),
  a small ridge keeping them finite, centred at 0.

A prompt with one completion has nothing to be compared with: scoring it is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import permutations

import torch

from ..config import ConfigError, check_choices, option
from ..data.encode import Counts
from ..data.pointwise import Encoded
from ..data.preference import check_example
from ..data.text import Text
from ..errors import DataError, JudgeError
from ..judge.backends import option_token_ids, render
from ..judge.data import item_of, question_text
from ..eval.diagnostics import degenerate
from ..judge.prompts import Template, check_template, load_template
from ..models.heads import score_outputs
from ..models.readout import as_json
from . import points
from .protocol import HeadSpec, ScoreCall

NAME = "judge"
HEADLINE = "agreement"  # the metric its evaluation is known by
STATS = ("correct", "orders")
LETTERS = ("A", "B", "C")
OPEN = "[["  # the answer starts with it; --soft in `rewardlab judge` reads the letter after it


@dataclass
class Options:
    """Trained pairwise judge: the judge prompt, and how K completions' verdicts become rewards."""

    judge_template: str = option("", "judge: the pairwise prompt, a built-in name (pair-v2, pair-ref) or a template file "
                                 "as `rewardlab judge --template` reads it (default MT-Bench's pair-v2).", resume=True)
    judge_system: str = option("", "judge: the template's system text; a trained model keeps its template here "
                               "(with --judge-user), so evaluation and scoring ask what training asked.", resume=True)
    judge_user: str = option("", "judge: the template's user text (placeholders {question}, {answer_a}, {answer_b}, "
                             "{reference}); set with --judge-system by training.", resume=True)
    judge_reward: str = option("win_rate", "judge scoring: one reward per completion of a prompt from its pairwise "
                               "verdicts: win_rate (mean probability of beating each other completion, both orders, "
                               "ties half) or bradley_terry (strengths fitted to those probabilities, mean 0).",
                               choices=("win_rate", "bradley_terry"), score="judge_reward")

    def __post_init__(self):
        check_choices(self)
        if self.judge_template and (self.judge_user or self.judge_system):
            raise ConfigError("give --judge-template or --judge-system/--judge-user, not both")

    def template(self) -> Template:
        try:
            if self.judge_user:
                return check_template(Template("trained", "pairwise", self.judge_user, self.judge_system),
                                      "the judge's template")
            return load_template(self.judge_template or "pair-v2", "pairwise")
        except JudgeError as e:
            raise ConfigError(str(e)) from None


@dataclass
class Comparison:
    """One row: a question, its answers, and the verdict of each pair (i, j) shown in that
    order: "A" (i better), "B" (j better) or "C" (tied in the data)."""

    question: str
    answers: list[str]
    pairs: list[tuple[int, int, str]]
    reference: str = ""
    row: int = 0
    rationale: str = ""  # a pair row's written judgment, for the data's order (chosen shown as A)

    def empty_completions(self) -> int:
        return sum(not a.strip() for a in self.answers)


@dataclass
class Target:
    """A training item: one pair of a comparison, the answer tokens of each order and where
    the verdict letter is among them."""

    comparison: Comparison
    pair: tuple[int, int, str]
    tokens: list[list[int]] = field(default_factory=list)
    letter_at: list[int] = field(default_factory=list)
    letters: list[int] = field(default_factory=list)
    rationale_n: list[int] = field(default_factory=list)  # per order: how many leading tokens are the rationale's

    def empty_completions(self) -> int:
        return sum(not self.comparison.answers[k].strip() for k in self.pair[:2])


def swapped(verdict: str) -> str:
    return {"A": "B", "B": "A"}.get(verdict, verdict)


def swap_assistants(text: str) -> str:
    """A judgment written for one order, for the other: Assistant A and Assistant B trade names."""
    return text.replace("Assistant A", "\0").replace("Assistant B", "Assistant A").replace("\0", "Assistant B")


def letter_ids(tokenizer) -> list[int]:
    """The ids of A, B and C right after "[[" (each one token there), as the local judge reads them."""
    try:
        return option_token_ids(tokenizer, OPEN, list(LETTERS))
    except JudgeError as e:
        raise ConfigError(f"kind judge: {e}") from None


class Prompts:
    """Token ids of the judge's prompts and answers for one tokenizer and template."""

    def __init__(self, tokenizer, template: Template):
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError("kind judge needs a backbone with a chat template (an instruction-tuned model)")
        self.tok, self.template, self.letters = tokenizer, template, letter_ids(tokenizer)
        probe = template.messages(question="q", answer_a="a", answer_b="b", reference="r")
        start = render(tokenizer, probe)
        turn = render(tokenizer, probe, answer=f"{OPEN}A]]")
        if not turn.startswith(start) or not turn[len(start):].startswith(f"{OPEN}A]]"):
            raise ConfigError("kind judge: this chat template does not write an assistant answer after the prompt")
        rest = turn[len(start) + len(OPEN) + 1:]  # "]]" and the template's end of turn
        eos = tokenizer.eos_token or ""
        if eos and eos in rest:  # up to the end of turn, not the newline after it
            rest = rest[:rest.index(eos) + len(eos)]
        # The tail of the whole answer tokenized at once (a tokenizer may mark where words start).
        head = tokenizer(start + OPEN + "A", add_special_tokens=False)["input_ids"]
        whole = tokenizer(start + OPEN + "A" + rest, add_special_tokens=False)["input_ids"]
        self.rest = whole[len(head):] if whole[:len(head)] == head else \
            tokenizer(rest, add_special_tokens=False)["input_ids"]

    def prompt(self, question: str, a: str, b: str, reference: str, rationale: str = "") -> tuple[list[int], int, int]:
        """The ids of the prompt followed by "[[" (as ``rewardlab judge --soft`` encodes it; with a
        rationale, the rationale and a blank line before it), how many of them are the prompt's
        own, and how many after those are the rationale's."""
        text = render(self.tok, self.template.messages(question=question, answer_a=a, answer_b=b, reference=reference))
        own = self.tok(text, add_special_tokens=False)["input_ids"]
        said = text + (rationale + "\n\n" if rationale else "")
        ids = self.tok(said + OPEN, add_special_tokens=False)["input_ids"]
        n = len(own) if ids[:len(own)] == own else len(ids)
        written = len(self.tok(said, add_special_tokens=False)["input_ids"]) - n if rationale else 0
        return ids, n, max(0, min(written, len(ids) - n))

    def answer(self, ids: list[int], own: int, verdict: str) -> tuple[list[int], list[int], list[int], int]:
        """(sequence, reads, targets, index of the letter among the reads): each answer token
        is read at the position before it."""
        letter = self.letters[LETTERS.index(verdict)]
        seq = ids + [letter] + self.rest
        targets = ids[own:] + [letter] + self.rest
        reads = list(range(own - 1, len(seq) - 1))
        return seq, reads, targets, len(ids) - own


def head(obj: Options, data=None) -> HeadSpec:
    t = obj.template()
    return HeadSpec("lm", 1, token_extras=lambda tokenizer: {"judge_letters": Prompts(tokenizer, t).letters},
                    fixed={"judge_template": "", "judge_system": t.system, "judge_user": t.user})


def describe(obj: Options) -> str:
    return "kind judge (pairwise judge: next-token loss on [[A]] / [[B]] / [[C]], both orders of every pair)"


def parser(obj: Options):
    """Rows as ``rewardlab judge`` reads them (the same question and answers shown), ranked:
    chosen/rejected pairs, or prompt + completions with ``scores`` / ``ranking``."""
    needs_reference = obj.template().needs_reference

    def parse(row, tokenizer, where, n, allow_empty=True, chat=False):
        item = item_of(row, where, "pairwise", needs_reference, n, any_k=True, allow_empty=allow_empty)
        tiers = check_example(row, tokenizer, where, n, allow_empty, chat=False).tiers  # checks the ranking
        rationale = row.get("rationale")
        if rationale is not None and (not isinstance(rationale, str) or not rationale.strip() or not item.labelled):
            raise DataError(f"{where}: 'rationale' must be a non-empty string on a chosen/rejected row (the judgment "
                            "written for chosen shown as Assistant A)")
        pairs = [(i, j, "A" if tiers[i] < tiers[j] else "B" if tiers[i] > tiers[j] else "C")
                 for i in range(len(tiers)) for j in range(i + 1, len(tiers))
                 if tiers[i] is not None and tiers[j] is not None]
        return Comparison(item.question, item.answers, pairs, item.reference, n, (rationale or "").strip())
    return parse


def check(example: Comparison, where: str, obj) -> None:
    if not example.pairs:
        raise DataError(f"{where}: no two completions are ranked against each other")


def encode(tokenizer, examples: list[Comparison], max_length: int, obj: Options, num_proc: int = 1,
           cache_dir: str = ""):
    """One item per pair, holding both orders; a pair longer than ``max_length`` in either
    order is skipped and counted (cutting it would cut the question or an answer)."""
    p = Prompts(tokenizer, obj.template())
    items, counts = [], Counts(total=sum(len(e.pairs) for e in examples))
    for e in examples:
        for i, j, verdict in e.pairs:
            t, seqs, reads = Target(e, (i, j, verdict), letters=p.letters), [], []
            for a, b, v, why in ((i, j, verdict, e.rationale), (j, i, swapped(verdict), swap_assistants(e.rationale))):
                ids, own, written = p.prompt(e.question, e.answers[a], e.answers[b], e.reference, why)
                seq, read, target, at = p.answer(ids, own, v)
                seqs.append(seq), reads.append(read), t.tokens.append(target), t.letter_at.append(at)
                t.rationale_n.append(written)
            if max(map(len, seqs)) > max_length:
                counts.skipped += 1
                continue
            items.append((t, Encoded(seqs, reads)))
    return items, counts


def units(item, obj) -> int:
    return 2  # the two orders


def loss(outputs: torch.Tensor, items: list, obj: Options) -> tuple[torch.Tensor, dict[str, float]]:
    """Per order, the summed next-token cross-entropy of the answer's tokens ("[[", the letter,
    "]]", the end of the turn) plus the mean of a rationale's tokens; summed over the orders.
    ``correct`` counts the orders whose most likely letter (among A, B, C) is the target's."""
    targets, weights, letter_rows, at = [], [], [], 0
    for t, _ in items:
        for tokens, k, n in zip(t.tokens, t.letter_at, t.rationale_n or [0] * len(t.tokens)):
            targets += tokens
            weights += ([1 / n] * n if n else []) + [1.0] * (len(tokens) - n)
            letter_rows.append(at + k)
            at += len(tokens)
    outputs = outputs.float()
    each = torch.nn.functional.cross_entropy(outputs, torch.tensor(targets, device=outputs.device), reduction="none")
    value = (each * torch.tensor(weights, device=outputs.device)).sum()
    letters = torch.tensor(items[0][0].letters, device=outputs.device)
    picked = letters[outputs[letter_rows][:, letters].argmax(-1)]
    wanted = torch.tensor([targets[r] for r in letter_rows], device=outputs.device)
    return value, {"correct": float((picked == wanted).sum()), "orders": float(len(letter_rows))}


def summarize(sums: dict[str, float]) -> dict[str, float]:
    return {"accuracy": sums["correct"] / sums["orders"] if sums["orders"] else float("nan")}


# ---------------------------------------------------------------- scoring

def letter_probs(logits: torch.Tensor, ids: list[int]) -> list[float]:
    """p(A), p(B), p(C) renormalised over the three letters, from one read's vocabulary logits."""
    return torch.softmax(logits.float()[ids], -1).tolist()


def _verdicts(model, prompts: Prompts, comparisons: list[tuple[str, list[str], str]], max_length: int,
              batch_size: int, share_prefixes: bool = True, max_tokens: int = 16384) -> tuple[list[dict], int]:
    """Letter probabilities of every ordered pair of each (question, answers, reference), all
    orders of one question in one group (its prompt's tokens shared); ``{"i,j": [pA, pB, pC]}``
    per question, and how many orders were too long (left out)."""
    groups, reads, keys, too_long = [], [], [], 0
    for question, answers, reference in comparisons:
        seqs, ks = [], []
        for i, j in permutations(range(len(answers)), 2):
            ids = prompts.prompt(question, answers[i], answers[j], reference)[0]
            if len(ids) > max_length:
                too_long += 1
                continue
            seqs.append(ids), ks.append((i, j))
        groups.append(seqs), reads.append([[len(s) - 1] for s in seqs]), keys.append(ks)
    todo = [k for k, g in enumerate(groups) if g]
    values = score_outputs(model, [groups[k] for k in todo], prompts.tok.pad_token_id, [reads[k] for k in todo],
                           batch_size, max_tokens, share_prefixes=share_prefixes)
    out = [{} for _ in comparisons]
    for k, v in zip(todo, values):
        out[k] = {order(*key): letter_probs(x[0], prompts.letters) for key, x in zip(keys[k], v)}
    return out, too_long


def order(i: int, j: int) -> str:
    """The key of answers i and j shown in that order (a string: verdicts are cached as JSON)."""
    return f"{i},{j}"


def beats(probs: dict, i: int, j: int) -> float | None:
    """P(i beats j): averaged over the orders that fit, a tie counting half."""
    seen = []
    if order(i, j) in probs:
        pa, _, pc = probs[order(i, j)]
        seen.append(pa + pc / 2)
    if order(j, i) in probs:
        _, pb, pc = probs[order(j, i)]
        seen.append(pb + pc / 2)
    return sum(seen) / len(seen) if seen else None


def bradley_terry_fit(wins: torch.Tensor, ridge: float = 1e-2, steps: int = 200) -> torch.Tensor:
    """Strengths s (mean 0) maximising sum_{i != j} w_ij log sigma(s_i - s_j) - ridge/2 |s|^2
    (Newton's method: the objective is concave; NaN entries of ``wins`` are left out)."""
    w = torch.nan_to_num(wins.double(), nan=0.0)
    w.fill_diagonal_(0)
    s = torch.zeros(len(w), dtype=torch.float64)
    for _ in range(steps):
        p = torch.sigmoid(s[:, None] - s[None, :])
        grad = (w * (1 - p)).sum(1) - (w.T * p).sum(1) - ridge * s
        c = (w + w.T) * p * (1 - p)
        hess = c - torch.diag(c.sum(1)) - ridge * torch.eye(len(w), dtype=torch.float64)
        step = torch.linalg.pinv(hess) @ grad  # without a ridge, shifting every s changes nothing
        s = s - step
        if step.abs().max() < 1e-10:
            break
    return s - s.mean()


def rewards_of(probs: dict, k: int, how: str) -> list[dict]:
    """One answer per completion of a prompt from its ordered pairs' letter probabilities."""
    wins = torch.full((k, k), float("nan"))
    for i, j in permutations(range(k), 2):
        b = beats(probs, i, j)
        wins[i, j] = float("nan") if b is None else b
    rate = [float(torch.nanmean(wins[i][torch.arange(k) != i])) for i in range(k)]
    strengths = bradley_terry_fit(wins).tolist() if how == "bradley_terry" else None
    if strengths:  # a completion none of whose orders fit max_length has no strength (not an average one)
        strengths = [s if r == r else float("nan") for s, r in zip(strengths, rate)]
    first = [sum(v[0] + v[2] / 2 for v in probs.values()) / len(probs)] * k if probs else [float("nan")] * k  # position bias
    return [{"reward": strengths[i] if strengths else rate[i], "win_rate": rate[i], "votes": votes(probs, i),
             "compared": k - 1, "first_shown_wins": first[i]} for i in range(k)]


def votes(probs: dict, i: int) -> int:
    """Net discrete votes for completion i: each order it is judged in gives +1 when its letter
    is the most likely, -1 when the other's is, 0 for a tie (JudgeBench's rule over both orders)."""
    net = 0
    for key, p in probs.items():
        a, b = map(int, key.split(","))
        if i in (a, b):
            pick = max(range(3), key=p.__getitem__)
            net += 0 if pick == 2 else 1 if (pick == 0) == (i == a) else -1
    return net


def score_texts(rm, texts: list, call: ScoreCall):
    """The texts of each group (a row's completions; without groups, the texts of one prompt)
    compared with one another in every ordered pair; rewards as ``judge_reward`` says. Each
    text's detail also holds its ``verdicts``: p(A), p(B), p(C) with it shown first against each
    other completion of its group (by index in the group). A group of one, a text without its
    prompt, a chat-templated text and a reference template without references are refused."""
    obj = call.options
    template = obj.template()
    for t in texts:
        if t.templated:
            raise DataError("a pairwise judge reads plain questions and answers, not chat-templated text: send "
                            "prompt + completions rows (or /get_reward queries with plain 'prompts')")
        if not t.prompt.strip():
            raise DataError("a pairwise judge needs each completion's prompt (the question it judges): send "
                            "prompt + completions rows, or /get_reward queries with 'prompts'")
        if template.needs_reference and not t.reference:
            raise ConfigError("this judge was trained with a {reference} template: score it on rows that carry "
                              "'reference' (`rewardlab eval`)")
    groups = call.groups or by_prompt(texts)
    alone = [g for g in groups if len(g) < 2]
    if alone:
        raise DataError(f"a pairwise judge compares the completions of one prompt: {len(alone)} prompt(s) have one "
                        f"completion, the first {texts[alone[0][0]].prompt[:60]!r}; send two or more per prompt")
    probs, _ = _verdicts(rm.model, Prompts(rm.tokenizer, template),
                         [(question_text(texts[g[0]].prompt), [texts[n].completion.strip() for n in g],
                           texts[g[0]].reference) for g in groups],
                         rm.max_length, call.batch_size, call.share_prefixes, call.max_tokens)
    out: list[dict] = [{} for _ in texts]
    counts = Counts(total=len(texts))
    for g, p in zip(groups, probs):
        for i, (n, answer) in enumerate(zip(g, rewards_of(p, len(g), obj.judge_reward))):
            shown_first = {str(j): p[order(i, j)] for j in range(len(g)) if order(i, j) in p}
            out[n] = as_json({**answer, "reward_from": obj.judge_reward, "verdicts": shown_first})
            counts.skipped += answer["win_rate"] != answer["win_rate"]  # no order of it fit max_length
    return out, counts


def by_prompt(texts: list) -> list[list[int]]:
    """Indices of the texts that share a prompt (a request's samples)."""
    by: dict[str, list[int]] = {}
    for n, t in enumerate(texts):
        by.setdefault(t.prompt, []).append(n)
    return list(by.values())


# ---------------------------------------------------------------- evaluation

def texts(example: Comparison) -> list[Text]:
    return [Text(example.question, a, reference=example.reference) for a in example.answers]


def orders_of(details: list[dict]) -> dict:
    """A row's letter probabilities by order ("i,j": answer i shown first), from its details."""
    return {order(i, int(j)): v for i, d in enumerate(details) for j, v in d.get("verdicts", {}).items()}


def metrics(examples: list[Comparison], details: list, obj: Options) -> dict:
    """Over the pairs the data ranks (both orders fitting): ``agreement`` (P(better beats worse),
    averaged over the orders, above 1/2), ``agreement_both_orders`` (FastChat's rule: both
    orders pick the better answer; a split or a tie is not agreement), ``position_consistency``
    (both orders pick the same answer), ``prefers_first`` (the share of orders whose pick is
    the answer shown first: 0.5 is unbiased) and ``tie_accuracy`` on tied pairs."""
    soft, both, consistent, first, orders, tie_right, ties, pairs, too_long = 0, 0, 0, 0, 0, 0, 0, 0, 0
    for e, probs in zip(examples, map(orders_of, details)):
        for i, j, verdict in e.pairs:
            if order(i, j) not in probs or order(j, i) not in probs:
                too_long += 1
                continue
            picks = [LETTERS[max(range(3), key=probs[o].__getitem__)] for o in (order(i, j), order(j, i))]
            first += sum(p == "A" for p in picks)
            orders += 2
            if verdict == "C":
                ties += 1
                tie_right += picks == ["C", "C"]
                continue
            better, worse = (i, j) if verdict == "A" else (j, i)
            pairs += 1
            soft += beats(probs, better, worse) > 0.5
            answer = [{"A": i, "B": j}.get(picks[0]), {"A": j, "B": i}.get(picks[1])]
            both += answer == [better, better]
            consistent += answer[0] is not None and answer[0] == answer[1]
    share = lambda a, b: a / b if b else float("nan")  # noqa: E731
    out = {"agreement": share(soft, pairs), "agreement_both_orders": share(both, pairs),
           "position_consistency": share(consistent, pairs), "prefers_first": share(first, orders), "pairs": pairs,
           "pairs_too_long": too_long}
    warnings = degenerate([], out["agreement"] if pairs else None, pairs, 0.5)
    if orders and out["prefers_first"] in (0.0, 1.0):
        warnings.append(f"the judge picks the answer shown {'first' if first else 'second'} in every order: "
                        "it reads positions, not answers")
    if warnings:
        out["warnings"] = warnings
    if ties:
        out.update(tie_accuracy=share(tie_right, ties), tied_pairs=ties)
    return out


def format_eval(m: dict) -> str:
    lines = [f"agreement with the data      {m['agreement']:.4f}  ({m['pairs']} pairs; P(better wins) over both orders)"
             + (f"; {m['pairs_too_long']} pairs longer than max_length in an order, left out"
                if m.get("pairs_too_long") else ""),
             f"agreement, both orders      {m['agreement_both_orders']:.4f}  (FastChat: a split or a tie counts against)",
             f"position consistency        {m['position_consistency']:.4f}",
             f"prefers the first shown     {m['prefers_first']:.4f}  (0.5 = no position bias)"]
    if "tie_accuracy" in m:
        lines.append(f"tie accuracy                {m['tie_accuracy']:.4f}  ({m['tied_pairs']} tied pairs)")
    return "\n".join(lines)


def report(path: str, metrics: dict, examples: list, details: list, model: str, data: str, obj) -> str:
    return points.report_page(path, NAME, metrics, [], model, data)

