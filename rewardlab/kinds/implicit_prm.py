"""Kind ``implicit_prm``: implicit process rewards (Yuan et al. 2024, "Free Process Rewards
without Process Labels", arXiv 2412.01981; the reward model of PRIME, Cui et al. 2025, arXiv
2502.01456).

The model is a causal language model pi_theta trained from the backbone; the frozen reference
pi_ref is that same starting backbone. Each completion token y_t (EOS included) gets the reward

    r_t = beta * (log pi_theta(y_t | x, y_<t) - log pi_ref(y_t | x, y_<t)),

and the outcome logit is their sum s = sum_t r_t. Only outcome labels train it: per example the
binary cross-entropy of sigma(s) against the label y in [0, 1],

    L = -(y log sigma(s) + (1 - y) log(1 - sigma(s))),

summed over the examples (unit: an example). A step's reward is the sum of its tokens' rewards
(Yuan et al.'s r^k = q^k - q^(k-1)), so the step rewards add up to s.

Rows: the ORM's ``{"prompt", "completion", "label"}`` (label 0/1 or in [0, 1]), or ``steps`` rows
(each step followed by ``implicit_separator``) whose outcome is ``correct``, a true/false
``label``, ``labels`` (one per step: all correct or not) or, as the prm kind reads it, an integer
``label``: ProcessBench's index of the first wrong step (-1: none, the outcome is correct).
Scored text is split into steps after each separator, the text unchanged; tokens after the last
step's end (EOS) count in the last step.

Scoring answers ``step_rewards`` (raw, as above), ``outcome`` = sigma(s), the trained P(correct),
and ``reward`` = the ``implicit_aggregate`` of sigma(step reward) over the steps read: min (the
weakest step, as the prm kind), prod, last, mean, or sum = sigma(sum of step rewards). Only the
read positions (the one before each completion token) go through the LM head; log pi is a
log-softmax in fp32 over the tokenizer's own vocabulary (a pad token rewardlab appended is left
out: a reference loaded afresh would not have it). The training items' reference log-probs are
computed once, before training (``prepare``), so one model is in memory; a scoring model loads
its reference from the ``backbone`` its settings name. No step token: nothing is read at a
step's end, and a new token would have no reference probability.
"""
from __future__ import annotations

import dataclasses
import math
import weakref
from dataclasses import dataclass, replace

import torch

from ..config import ConfigError, ModelSettings, check_choices, option
from ..data.pointwise import Point, encode_points, parse_orm, parse_prm
from ..errors import DataError, ModelError
from ..eval.pointwise import best_threshold, format_pointwise, orm_metrics, processbench, step_f1
from ..losses import token_bce
from ..models.backbone import PAD_TOKEN, hf_model, resolve
from ..models.heads import score_outputs
from ..models.readout import aggregate_steps, as_json
from . import points
from .protocol import HeadSpec, ScoreCall

NAME = "implicit_prm"
STATS = ("correct", "examples")
PER_TOKEN = True  # token_rewards: r_t of every completion token
FORMATS = ("processbench",)
units = lambda item, obj: 1  # noqa: E731  (unit: an example)
read_mode = lambda per_token: "tokens"  # noqa: E731  (every completion token is read)
LOGITS_BUDGET = 2**27  # logits held at once when scoring (reads x vocabulary, fp32: 512 MiB)
_REFERENCES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # scoring model -> its pi_ref


@dataclass
class Options:
    """Implicit PRM: beta, where steps end, and how step rewards make a reward."""

    implicit_beta: float = option(0.05, "implicit_prm: beta in r_t = beta x log(pi / pi_ref) per token (0.05: Yuan "
                                  "et al. and PRIME).", resume=True, above=0)
    implicit_separator: str = option("\n", "implicit_prm: the text after every step of a 'steps' row; scored text "
                                     "is split into steps after it.", resume=True)
    implicit_aggregate: str = option("min", "implicit_prm: the reward from sigma(step reward): min (the weakest step), "
                                     "prod, last, mean, or sum (sigma of the summed step rewards: the outcome).",
                                     choices=("min", "prod", "last", "mean", "sum"), score="aggregate")
    implicit_threshold: float = option(0.0, "implicit_prm evaluation: ProcessBench's threshold on sigma(step reward) "
                                       "(0: chosen on half of the eval rows, reported on the other half).", low=0,
                                       score="threshold")

    def __post_init__(self):
        check_choices(self)
        if not self.implicit_separator:
            raise ConfigError("kind implicit_prm needs --implicit-separator to mark where each step ends")
        if self.implicit_threshold >= 1:
            raise ConfigError(f"implicit_threshold is a probability below 1, got {self.implicit_threshold:g}")


@dataclass
class Target:
    """A training example's outcome label, a ``steps`` row's step labels (evaluation only), and
    the reference's log-probability of each read token (``prepare``) over ``vocab`` tokens."""

    label: float
    steps: list[float] | None = None
    ref: torch.Tensor | None = None
    vocab: int | None = None


@dataclass
class TokenRewards:
    """One scored text: r_t per completion token (NaN: cut off), each token's step, the steps."""

    rewards: torch.Tensor
    owner: list[int]
    n_steps: int


def outcome_loss(logp: torch.Tensor, ref_logp: torch.Tensor, example: torch.Tensor, labels: torch.Tensor,
                 beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """s_i = beta * sum_{t in i} (logp_t - ref_logp_t) (``example[t]``: the example of token t),
    and sum_i -(y_i log sigma(s_i) + (1 - y_i) log(1 - sigma(s_i))); returns (loss, s)."""
    s = torch.zeros(len(labels), dtype=logp.dtype, device=logp.device).index_add(0, example, beta * (logp - ref_logp))
    return token_bce(s, labels.to(s.dtype), reduction="sum"), s


def sigmoid(x: float) -> float:
    """1 / (1 + e^-x) without overflow (NaN stays NaN)."""
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def own_vocab(tokenizer) -> int | None:
    """The tokens the log-softmax runs over: all but a pad token rewardlab appended (None: all)."""
    return tokenizer.pad_token_id if tokenizer.pad_token == PAD_TOKEN else None


def head(obj: Options, data=None) -> HeadSpec:
    return HeadSpec("lm", 1, token_extras=lambda tokenizer: {"implicit_vocab": own_vocab(tokenizer)})


def describe(obj: Options) -> str:
    return (f"kind implicit_prm (implicit process rewards beta={obj.implicit_beta:g} x log pi/pi_ref per token, "
            f"outcome BCE on their sum; steps end at {obj.implicit_separator!r})")


def step_marker(obj: Options) -> str:
    return obj.implicit_separator


def split_steps(completion: str, separator: str) -> list[int]:
    """Where each step ends in ``completion`` (after each separator; the text is not changed):
    blank steps join the next one, a last step without a separator ends with the text."""
    ends, last, at = [], 0, completion.find(separator)
    while at >= 0:
        end = at + len(separator)
        if completion[last:at].strip():
            ends.append(end)
            last = end
        at = completion.find(separator, end)
    if completion[last:].strip() or not ends:
        ends.append(len(completion))
    return ends


def _with_steps(point: Point, separator: str) -> Point:
    """The point, its steps found after each separator when it has none (a ``steps`` row keeps its own)."""
    return point if point.ends is not None else replace(point, ends=split_steps(point.completion, separator))


def scored_point(text, call: ScoreCall) -> Point:
    ends = None if text.ends is None else list(text.ends)
    return _with_steps(Point(text.prompt, text.completion, None, ends, text.templated), step_marker(call.options))


def parser(obj: Options):
    def parse(row, tokenizer, where, n, allow_empty=True, chat=False):
        if row.get("steps") is None:
            p = parse_orm(row, tokenizer, where, n, allow_empty, chat)
            return replace(p, target=Target(p.target))
        if isinstance(row.get("label"), bool) and row.get("correct") is None:  # an outcome written as 'label'
            row = {**row, "correct": row["label"], "label": None}
        if all(row.get(k) is None for k in ("correct", "label", "labels")):
            raise DataError(f"{where}: a 'steps' row needs its outcome: 'correct' (0/1, true/false), 'labels' (one "
                            "per step) or 'label' (the index of the first wrong step, -1 if none)")
        p = parse_prm(row, tokenizer, where, n, obj.implicit_separator, "soft", allow_empty, chat)
        outcome = p.outcome if p.outcome is not None else float(all(t >= 0.5 for t in p.target))
        return replace(p, target=Target(outcome, p.target), outcome=outcome)
    return parse


def encode(tokenizer, examples, max_length: int, obj: Options, num_proc: int = 1, cache_dir: str = ""):
    """Items read at the position before every completion token (its next-token logits)."""
    items, counts = encode_points(tokenizer, examples, max_length, "tokens")
    return [(p, replace(enc, reads=[[r - 1 for r in enc.reads[0] if r >= 1]])) for p, enc in items], counts


def token_logps(model, seqs: list[list[int]], reads: list[list[int]], vocab: int | None, pad_id: int,
                batch_size: int = 16, max_tokens: int = 16384, share_prefixes: bool = True,
                progress: str = "") -> list[torch.Tensor]:
    """log pi(s[r + 1] | s[:r + 1]) in fp32 for every read position r of every sequence, without
    gradients, over the first ``vocab`` tokens (None: all). Texts go in chunks (a prompt's texts
    together, so they share its forward) holding at most LOGITS_BUDGET logits."""
    width = vocab or hf_model(model).get_output_embeddings().weight.shape[0]
    most = max(1, LOGITS_BUDGET // width)
    out = [torch.zeros(0) for _ in seqs]
    chunks, size = [[]], 0
    for i in sorted((i for i in range(len(seqs)) if reads[i]), key=lambda i: seqs[i]):
        if chunks[-1] and size + len(reads[i]) > most:
            chunks.append([])
            size = 0
        chunks[-1].append(i)
        size += len(reads[i])
    from tqdm.auto import tqdm

    todo = [c for c in chunks if c]
    for chunk in tqdm(todo, desc=progress, unit="chunk", disable=not progress or len(todo) < 2, dynamic_ncols=True):
        values = score_outputs(model, [[seqs[i]] for i in chunk], pad_id, [[reads[i]] for i in chunk], batch_size,
                               min(max_tokens, most), share_prefixes)
        for i, v in zip(chunk, values):
            logits = v[0][:, :vocab] if vocab else v[0]
            target = torch.tensor([seqs[i][r + 1] for r in reads[i]])
            out[i] = -torch.nn.functional.cross_entropy(logits.float(), target, reduction="none")
    return out


def prepare(model, items: list, obj: Options, device) -> list:
    """The reference log-probabilities of every item's completion tokens, with the model as given
    (the starting backbone), once; its mode and device are restored."""
    inner = hf_model(model)
    vocab = ModelSettings.of(inner).extras.get("implicit_vocab")
    was_training, before = model.training, next(model.parameters()).device
    movable = getattr(inner, "hf_quantizer", None) is None  # 4-bit weights stay where they were loaded
    if movable:
        model.to(device)
    try:
        ref = token_logps(model, [enc.sequences[0] for _, enc in items], [enc.reads[0] for _, enc in items], vocab,
                          inner.config.pad_token_id or 0, progress="reference log-probabilities")
    finally:
        model.train(was_training)
        if movable:
            model.to(before)
    return [(replace(p, target=replace(p.target, ref=r, vocab=vocab)), enc) for (p, enc), r in zip(items, ref)]


def loss(outputs: torch.Tensor, items: list, obj: Options) -> tuple[torch.Tensor, dict[str, float]]:
    """:func:`outcome_loss` of the next-token logits at the read positions; ``prepare`` gave the
    reference log-probabilities."""
    if any(p.target.ref is None for p, _ in items):
        raise ConfigError("kind implicit_prm: the items have no reference log-probabilities (computed before "
                          "training from data read whole): --streaming is not supported")
    device, vocab = outputs.device, items[0][0].target.vocab
    logits = outputs[:, :vocab] if vocab else outputs
    target = torch.tensor([enc.sequences[0][r + 1] for _, enc in items for r in enc.reads[0]], device=device)
    logp = -torch.nn.functional.cross_entropy(logits.float(), target, reduction="none")
    ref = torch.cat([p.target.ref for p, _ in items]).to(device)
    example = torch.tensor([i for i, (_, enc) in enumerate(items) for _ in enc.reads[0]], dtype=torch.long,
                           device=device)
    labels = torch.tensor([p.target.label for p, _ in items], device=device)
    value, s = outcome_loss(logp, ref, example, labels, obj.implicit_beta)
    right = ((s.detach() >= 0) == (labels >= 0.5)).sum()
    return value, {"correct": float(right), "examples": float(len(items))}


def summarize(sums: dict[str, float]) -> dict[str, float]:
    return {"accuracy": sums["correct"] / sums["examples"] if sums["examples"] else float("nan")}


def reference_model(model, settings: dict):
    """pi_ref: the backbone training started from, loaded once per scoring model (kept as long as it is)."""
    key = hf_model(model)
    if key in _REFERENCES:
        return _REFERENCES[key]
    from transformers import AutoModelForCausalLM

    name = settings.backbone
    if not name:
        raise ModelError("this implicit PRM's settings name no backbone (config.rewardlab['backbone']): its "
                         "reference model is unknown")
    param = next(key.parameters())
    try:
        ref = AutoModelForCausalLM.from_pretrained(resolve(name), dtype=param.dtype,
                                                   trust_remote_code=settings.trust_remote_code)
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot load the reference model {name!r} (the backbone this implicit PRM started from): "
                         f"{str(e).splitlines()[0]}") from None
    _REFERENCES[key] = ref.to(param.device).eval().requires_grad_(False)
    return _REFERENCES[key]


def _token_rewards(model, tokenizer, pts: list[Point], max_length: int, settings, beta: float, batch_size: int = 16,
                   max_tokens: int = 16384, share_prefixes: bool = True) -> tuple[list[TokenRewards], object]:
    """Every point's token rewards (the policy and its reference at the same reads) and the counts."""
    vocab = settings.extras.get("implicit_vocab")
    ref = reference_model(model, settings)
    sizes = [m.get_output_embeddings().weight.shape[0] for m in (hf_model(model), ref)]
    if vocab is None and sizes[0] != sizes[1]:
        raise ModelError(f"the reference model's vocabulary ({sizes[1]}) differs from this model's ({sizes[0]})")
    encoded, counts = encode_points(tokenizer, pts, max_length, "tokens", cut_completion=True)
    # Steps found on the whole text, so a step that truncation cut into is known to be partial.
    whole = [enc.reads[0] for _, enc in encode_points(tokenizer, pts, 1 << 62, "tokens")[0]]
    ends = [enc.reads[0] for _, enc in encode_points(tokenizer, pts, 1 << 62, "steps")[0]]
    kept = [[r for r in enc.reads[0] if r is not None and r >= 1] for _, enc in encoded]
    seqs, pad = [enc.sequences[0] for _, enc in encoded], tokenizer.pad_token_id
    logp = token_logps(model, seqs, [[r - 1 for r in k] for k in kept], vocab, pad, batch_size, max_tokens,
                       share_prefixes)
    ref_logp = token_logps(ref, seqs, [[r - 1 for r in k] for k in kept], vocab, pad, batch_size, max_tokens,
                           share_prefixes)
    out = []
    for (p, enc), u, e, lp, lr in zip(encoded, whole, ends, logp, ref_logp):
        rewards = torch.full((len(enc.reads[0]),), float("nan"))
        rewards[[j for j, r in enumerate(enc.reads[0]) if r is not None and r >= 1]] = beta * (lp - lr)
        owner = [next((k for k, end in enumerate(e) if t <= end), len(e) - 1) for t in u]
        out.append(TokenRewards(rewards, owner, len(e)))
    return out, counts


def readout(outputs: TokenRewards, settings, call: ScoreCall) -> dict:
    """Step rewards (sums of their tokens' rewards; NaN where truncation cut a token), outcome =
    sigma(sum of the rewards read) and the reward aggregated over the steps read."""
    how, per_token = call.options.implicit_aggregate, call.per_token
    r = outputs.rewards.tolist()
    steps = [0.0] * outputs.n_steps
    for x, k in zip(r, outputs.owner):
        steps[k] += x
    known = [x for x in steps if x == x]
    read = [x for x in r if x == x]
    reward = float("nan") if not known else sigmoid(sum(known)) if how == "sum" else \
        aggregate_steps([sigmoid(x) for x in known], how)
    return {"reward": reward, "step_rewards": steps, "outcome": sigmoid(sum(read)) if read else float("nan"),
            "aggregate": how, **({"token_rewards": r} if per_token else {})}


def score_texts(rm, texts: list, call: ScoreCall):
    """Both models at every completion token of each text (the reference loaded once per model)."""
    pts = [scored_point(t, call) for t in texts]
    rows, counts = _token_rewards(rm.model, rm.tokenizer, pts, rm.max_length, rm.settings, call.options.implicit_beta,
                                  call.batch_size, call.max_tokens, call.share_prefixes)
    return [as_json(readout(o, rm.settings, call)) for o in rows], counts


def _outputs(details: list[list[dict]]) -> list[dict]:
    """Each example's detail, a read cut off as NaN."""
    return [{k: points.nan(v) for k, v in d[0].items()} for d in details]


def metrics(examples, details: list, obj: Options) -> dict:
    """The ORM's metrics of the outcome sigma(s), AUROC and best-of-N of the aggregated reward;
    on rows with step labels step F1 of sigma(step reward) > 0.5 and ProcessBench's first-error
    F1 (threshold: ``implicit_threshold``, else chosen on the even rows, reported on the odd)."""
    outputs, labels, groups = _outputs(details), [e.target.label for e in examples], points.groups_of(examples)
    answers = [e.answer for e in examples]
    nan_half = lambda x: 0.5 if x != x else x  # noqa: E731  (nothing read: no opinion)
    out = orm_metrics([nan_half(o["outcome"]) for o in outputs], labels, groups,
                      answers if all(a is not None for a in answers) else None)
    agg = orm_metrics([nan_half(o["reward"]) for o in outputs], labels, groups)
    out["aggregate"] = {"how": obj.implicit_aggregate,
                        **{k: agg[k] for k in ("auroc", "best_of_n", "n_groups") if k in agg}}
    kept = [([sigmoid(x) for x in o["step_rewards"]], [t >= 0.5 for t in e.target.steps])
            for e, o in zip(examples, outputs) if e.target.steps is not None and all(x == x for x in o["step_rewards"])]
    if kept:
        out["steps"] = step_f1([s for s, _ in kept], [g for _, g in kept])
    first = [next((i for i, ok in enumerate(g) if not ok), -1) for _, g in kept]
    reported, t = list(range(len(kept))), obj.implicit_threshold
    how = "given"
    if kept and not t and len(kept) >= 4:
        reported = reported[1::2]
        try:
            t, how = best_threshold([s for s, _ in kept[0::2]], first[0::2]), \
                "chosen on the even rows, reported on the odd rows"
        except ValueError:  # the even rows lack erroneous or all-correct samples
            t, how = 0.5, "0.5 (the even rows cannot choose one: they lack a class)"
    if kept and t:
        out["processbench"] = {**processbench([kept[i][0] for i in reported], [first[i] for i in reported], t),
                               "threshold_from": how}
    return out


def format_eval(m: dict) -> str:
    """Outcome, aggregate, step and ProcessBench blocks."""
    parts = []
    if "auroc" in m:
        parts.append(f"outcome sigma(sum of token rewards) ({m['n']} completions)\n" + format_pointwise(m))
    if "aggregate" in m:
        a = m["aggregate"]
        parts.append(f"reward = {a['how']} of sigma(step rewards)\n"
                     + format_pointwise({k: v for k, v in a.items() if k != "how"}))
    if "steps" in m:
        parts.append("steps (sigma(step reward) > 0.5 predicts correct)\n" + format_pointwise(m["steps"]))
    if "processbench" in m:
        pb = m["processbench"]
        parts.append(f"ProcessBench first error (threshold {pb['threshold_from']})\n" + format_pointwise(pb))
    return "\n".join(parts)


def report(path: str, metrics: dict, examples: list, details: list, model: str, data: str, obj) -> str:
    from ..eval.report_kinds import orm_sections, prm_sections

    outputs = _outputs(details)
    flat = [replace(e, target=e.target.label) for e in examples]
    sections = orm_sections(flat, [o["outcome"] for o in outputs])
    stepped = [(replace(e, target=e.target.steps), [sigmoid(x) for x in o["step_rewards"]])
               for e, o in zip(examples, outputs) if e.target.steps is not None]
    if stepped:
        sections += prm_sections(metrics, [e for e, _ in stepped], [s for _, s in stepped], "binary")
    return points.report_page(path, NAME, metrics, sections, model, data)
