"""Kind ``prm``: process reward model (Lightman et al. 2023, "Let's Verify Step by Step").

A row is a prompt, its solution steps and one label per step. Each step is followed by a
marker (the separator, default "\\n", or a dedicated step token such as Qwen2.5-Math-PRM's
``<extra_0>``, added to the tokenizer when absent) and the step's label is read at the
marker's last token only (data/pointwise.py marks steps the same way for scoring). Labels:
- ``binary``: correct / wrong, binary cross-entropy on one logit;
- ``soft``: floats in [0, 1] (Math-Shepherd Monte-Carlo estimates), BCE against the float
  (a 0.3 trains toward 0.3; TRL's PRMTrainer truncates it to 0 with int());
- ``ternary``: PRM800K's -1/0/+1, cross-entropy over 3 classes.
The score of a step is P(correct) (binary, soft) or 1 - P(wrong) (ternary: a neutral step,
"reasonable but unhelpful", does not make a solution wrong). A solution's reward aggregates
its step scores (``aggregate``: min as Math-Shepherd, prod as PRM800K, last, mean). Unit: a
labelled step (``last_step_only``: one per solution).
"""

from __future__ import annotations

import torch

from dataclasses import dataclass

from ..config import ConfigError, check_choices, option
from ..data.pointwise import parse_prm
from ..errors import DataError
from ..eval.pointwise import best_threshold, format_pointwise, orm_metrics, processbench, step_f1
from ..losses import step_cross_entropy, token_bce
from ..models.readout import aggregate_steps, step_scores
from . import points
from .protocol import HeadSpec, ScoreCall

NAME = "prm"
STATS = ("correct", "steps")
FORMATS = ("processbench",)


def step_marker(obj: Options) -> str:
    """What ends every step: the step token, else the separator."""
    return obj.step_token or obj.step_separator


@dataclass
class Options:
    """Process reward model: step labels, where a step ends, and how steps make a reward."""

    prm_labels: str = option("binary", "prm: step labels as binary (true/false, 0/1), ternary (PRM800K's -1/0/+1, a "
                             "3-class head) or soft (floats in [0, 1], kept as floats).",
                             choices=("binary", "ternary", "soft"), resume=True)
    step_separator: str = option("\n", "prm: text appended to every step; the step's label is read at its last "
                                 "token.", resume=True)
    step_token: str = option("", "prm: a dedicated token appended to every step instead of the separator (e.g. "
                             "<extra_0>); added to the tokenizer if absent.", resume=True)
    last_step_only: bool = option(False, "prm: train on each solution's last step only.", resume=True)
    aggregate: str = option("min", "prm: a solution's reward from its step scores: min (Math-Shepherd), prod "
                            "(PRM800K), last or mean.", choices=("min", "prod", "last", "mean"), score="aggregate")
    prm_threshold: float = option(0.0, "prm evaluation: the step-score threshold of ProcessBench's first-error rule "
                                  "(0: chosen on half of the eval rows, reported on the other half).", low=0,
                                  score="threshold")

    def __post_init__(self):
        check_choices(self)
        if not (self.step_token or self.step_separator):
            raise ConfigError("kind prm needs --step-separator or --step-token to mark where each step ends")


def read_mode(per_token: bool) -> str:
    return "steps"


def readout(outputs: torch.Tensor, settings, call: ScoreCall) -> dict:
    """A score per step, and the reward aggregated from the steps that could be read."""
    scores = step_scores(outputs).tolist()
    how = call.options.aggregate
    known = [s for s in scores if s == s]
    return {"step_rewards": scores, "reward": aggregate_steps(known, how) if known else float("nan"),
            "aggregate": how}


def report(path: str, metrics: dict, examples: list, details: list, model: str, data: str, obj) -> str:
    from ..eval.report_kinds import prm_sections

    return points.report_page(path, NAME, metrics, prm_sections(metrics, examples, step_lists(details),
                                                                obj.prm_labels), model, data)


def head(obj: Options, data=None) -> HeadSpec:
    return HeadSpec("token", 3 if obj.prm_labels == "ternary" else 1,
                    new_tokens=(obj.step_token,) if obj.step_token else ())


def describe(obj: Options) -> str:
    where = f"step token {obj.step_token!r}" if obj.step_token else f"separator {obj.step_separator!r}"
    return (f"kind prm (process reward model), {obj.prm_labels} step labels read at the {where}"
            + (", last step only" if obj.last_step_only else ""))


def parser(obj: Options):
    def parse(row, tokenizer, where, n, allow_empty=True, chat=False):
        return parse_prm(row, tokenizer, where, n, step_marker(obj), obj.prm_labels, allow_empty, chat)
    return parse


def check(example, where: str, obj: Options) -> None:
    if example.target is None:
        raise DataError(f"{where}: training needs step labels ('labels' or 'label'); 'correct' alone grades the "
                        "outcome only")


def encode(tokenizer, examples, max_length: int, obj: Options, num_proc: int = 1, cache_dir: str = ""):
    items, counts = points.encoder("steps")(tokenizer, examples, max_length)
    if obj.last_step_only:
        for _, enc in items:
            enc.reads = [enc.reads[0][-1:]]
    return items, counts


def _targets(items: list, obj: Options) -> list[float]:
    return [t for p, enc in items for t in p.target[len(p.target) - len(enc.reads[0]):]]


def loss(outputs: torch.Tensor, items: list, obj: Options) -> tuple[torch.Tensor, dict[str, float]]:
    targets = torch.tensor(_targets(items, obj), device=outputs.device)
    scores = step_scores(outputs.detach())
    good = targets >= 0 if obj.prm_labels == "ternary" else targets >= 0.5
    stats = {"correct": float(((scores >= 0.5) == good).sum()), "steps": float(len(targets))}
    if obj.prm_labels == "ternary":
        return step_cross_entropy(outputs, (targets + 1).long(), reduction="sum"), stats
    return token_bce(outputs[:, 0], targets.to(outputs.dtype), reduction="sum"), stats


def summarize(sums: dict[str, float]) -> dict[str, float]:
    return {"step_accuracy": sums["correct"] / sums["steps"] if sums["steps"] else float("nan")}


def step_lists(details: list[list[dict]]) -> list[list[float]]:
    """Every example's step scores (NaN where truncation cut a step off)."""
    return points.only(details, "step_rewards")


def _is_good(label: float, scheme: str) -> bool:
    return label >= 0 if scheme == "ternary" else label >= 0.5


def metrics(examples, details: list, obj: Options) -> dict:
    """Step F1 (both classes) and ProcessBench first-error F1 on rows with step labels, and,
    when several solutions share a prompt, best-of-N with the aggregate (a solution is right
    when its ``correct`` says so, else when every step is). ProcessBench's threshold:
    ``prm_threshold`` when given; else chosen on the even-numbered rows, reported on the odd."""
    scheme, scores = obj.prm_labels, step_lists(details)
    labels = [None if e.target is None else [_is_good(t, scheme) for t in e.target] for e in examples]
    usable = [i for i, (s, lab) in enumerate(zip(scores, labels)) if lab is not None and all(x == x for x in s)]
    kept = [(scores[i], labels[i]) for i in usable]
    subsets = [examples[i].subset for i in usable]
    out = {"n": len(examples)}
    if kept:
        out["steps"] = step_f1([s for s, _ in kept], [lab for _, lab in kept])
        out["accuracy"] = out["steps"].get("accuracy")
    first = [next((i for i, ok in enumerate(lab) if not ok), -1) for _, lab in kept]
    reported = list(range(len(kept)))
    if kept and obj.prm_threshold > 0:
        t, how = obj.prm_threshold, "given"
    elif len(kept) >= 4:
        reported = reported[1::2]
        try:
            t, how = best_threshold([s for s, _ in kept[0::2]], first[0::2]), \
                "chosen on the even rows, reported on the odd rows"
        except ValueError:  # the even rows lack erroneous or all-correct samples: no F1 to maximise
            t, how = 0.5, "0.5 (the even rows cannot choose one: they lack a class)"
    if kept and (obj.prm_threshold > 0 or len(kept) >= 4):
        out["processbench"] = {**processbench([kept[i][0] for i in reported], [first[i] for i in reported], t),
                               "threshold_from": how}
        if any(s is not None for s in subsets):  # ProcessBench's splits (a split or subset column)
            out["processbench"]["splits"] = {
                name: processbench([kept[i][0] for i in reported if subsets[i] == name],
                                   [first[i] for i in reported if subsets[i] == name], t)
                for name in sorted({subsets[i] for i in reported if subsets[i] is not None})}
    # Steps cut off by truncation (NaN) are left out of the aggregate, as scoring does.
    rewards = [aggregate_steps(known, obj.aggregate) if (known := [x for x in s if x == x]) else 0.0 for s in scores]
    groups = points.groups_of(examples)
    solved = [e.outcome if e.outcome is not None else float(all(lab)) if lab is not None else None
              for e, lab in zip(examples, labels)]
    if groups and all(x is not None for x in solved):
        answers = [e.answer for e in examples]
        out["best_of_n"] = orm_metrics(rewards, solved, groups, answers if all(answers) else None)
        out["best_of_n"]["aggregate"] = obj.aggregate
    return out


def format_eval(m: dict) -> str:
    """Step F1, ProcessBench and best-of-N blocks, each a small table."""
    parts = [f"steps ({m['n']} solutions)\n" + format_pointwise(m["steps"])] if "steps" in m else []
    if "processbench" in m:
        pb = m["processbench"]
        parts.append(f"ProcessBench first error (threshold {pb['threshold_from']})\n" + format_pointwise(pb))
        for name, split in pb.get("splits", {}).items():
            f1 = "n/a" if split["f1"] is None else f"{split['f1']:.4f}"
            parts.append(f"  {name:<24} F1 {f1}  (n={split['n_error'] + split['n_correct']})")
    if "best_of_n" in m:
        parts.append(f"best-of-N (aggregate {m['best_of_n']['aggregate']})\n"
                     + format_pointwise({k: v for k, v in m["best_of_n"].items() if k != "accuracy"}))
    return "\n".join(parts)
