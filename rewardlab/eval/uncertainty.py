"""Evaluating an ensemble (a folder of members, or ``--heads N``): the ensemble beside each
member, every aggregation, and whether the members' spread predicts the ensemble's mistakes.

An ensemble is worth its cost when (a) it is at least as accurate as its members and (b) its
spread is informative: pairs it gets wrong should carry more disagreement than pairs it gets
right. (b) is measured as the AUROC of the spread for a wrong pair order (0.5: the spread
says nothing), and as the accuracy on the quarter of pairs with the least and the most spread.
A pair's spread is the mean of its two completions' ``reward_std`` (what a server sends an RL
loop); ``margin_spread`` is the members' std of their own margin r_m(better) - r_m(worse).
"""

from __future__ import annotations

import html

from ..models.ensemble import AGGREGATES, aggregate
from .pointwise import auroc
from .preference import example_metrics
from .report import _figure, _table, page


def _pair_spreads(examples: list, details: list[list[dict]]) -> tuple[list[bool], list[float], list[float]]:
    """Per strict pair: wrong (the aggregate orders it wrongly or ties), its spread, its margin spread."""
    wrong, spread, margin_spread = [], [], []
    for e, g in zip(examples, details):
        for i, j in e.strict_pairs():
            wrong.append(not g[i]["reward"] > g[j]["reward"])
            spread.append((g[i]["reward_std"] + g[j]["reward_std"]) / 2)
            diffs = [a - b for a, b in zip(g[i]["members"], g[j]["members"])]
            m = sum(diffs) / len(diffs)
            margin_spread.append((sum((d - m) ** 2 for d in diffs) / len(diffs)) ** 0.5)
    return wrong, spread, margin_spread


def _quarters(wrong: list[bool], spread: list[float]) -> dict:
    """Accuracy on the most certain (least spread) and least certain quarter of pairs."""
    if not spread:  # every pair tied: nothing ranked
        return {"accuracy_most_certain_quarter": None, "accuracy_least_certain_quarter": None, "quarter_pairs": 0}
    order = sorted(range(len(spread)), key=lambda k: spread[k])
    q = max(1, len(order) // 4)

    def acc(idx):
        return 1 - sum(wrong[k] for k in idx) / len(idx)

    return {"accuracy_most_certain_quarter": acc(order[:q]), "accuracy_least_certain_quarter": acc(order[-q:]),
            "quarter_pairs": q}


def _brief(m: dict) -> dict:
    out = {"accuracy": m.get("accuracy")}
    if "calibration" in m:
        out["ece"] = m["calibration"]["ece"]
    return out


def ensemble_metrics(examples: list, details: list[list[dict]], tie_threshold: float = 0.1,
                     coef: float = 1.0) -> dict:
    """``details``: per example, per completion, an ensemble's answer with ``members``. The
    ensemble's own metrics (its saved or chosen aggregate) at the top, then ``members`` (each
    member's accuracy and calibration, their mean and best), ``aggregates`` (each aggregation
    on the same member rewards) and ``uncertainty`` (spread against mistakes)."""
    agg = [[d["reward"] for d in g] for g in details]
    out = example_metrics(examples, agg, tie_threshold)
    size = len(details[0][0]["members"])
    members = [_brief(example_metrics(examples, [[d["members"][m] for d in g] for g in details], tie_threshold))
               for m in range(size)]
    accs = [m["accuracy"] for m in members]
    out["members"] = {"each": members, "mean_accuracy": sum(accs) / size, "best_accuracy": max(accs)}
    out["aggregates"] = {how: _brief(example_metrics(
        examples, [[aggregate(d["members"], how, coef) for d in g] for g in details], tie_threshold))
        for how in AGGREGATES}
    wrong, spread, margin_spread = _pair_spreads(examples, details)
    out["uncertainty"] = {"pairs": len(wrong), "mistakes": sum(wrong), "auroc_spread_for_mistakes": auroc(spread, wrong),
                          "auroc_margin_spread_for_mistakes": auroc(margin_spread, wrong),
                          "mean_spread": sum(spread) / len(spread) if spread else None, **_quarters(wrong, spread)}
    return out


def format_ensemble(metrics: dict) -> str:
    """The lines an ensemble adds under its own metrics table."""
    m, u = metrics["members"], metrics["uncertainty"]
    lines = [f"members      {len(m['each'])}: accuracy " + " ".join(f"{x['accuracy']:.4f}" for x in m["each"])
             + f" (mean {m['mean_accuracy']:.4f}, best {m['best_accuracy']:.4f})"]
    lines += [f"  aggregate {how:<15} accuracy {a['accuracy']:.4f}" + (f"  ECE {a['ece']:.4f}" if "ece" in a else "")
              for how, a in metrics["aggregates"].items()]
    auc = u["auroc_spread_for_mistakes"]
    most, least = (u[f"accuracy_{w}_certain_quarter"] for w in ("most", "least"))
    lines.append(f"uncertainty  AUROC of the spread for a wrong order {'n/a' if auc is None else f'{auc:.4f}'} "
                 f"({u['mistakes']} mistakes in {u['pairs']} pairs); accuracy on the most certain quarter "
                 f"{'n/a' if most is None else f'{most:.4f}'}, least certain {'n/a' if least is None else f'{least:.4f}'}")
    return "\n".join(lines)


def ensemble_sections(metrics: dict, examples: list, details: list[list[dict]]) -> list[str]:
    """The report's ensemble part: accuracy of the ensemble beside each member and aggregation,
    and accuracy by spread (pairs in four equal groups from most to least certain)."""
    names = [f"member {i + 1}" for i in range(len(metrics["members"]["each"]))] + \
        [f"ensemble ({how})" for how in metrics["aggregates"]]
    values = [x["accuracy"] for x in metrics["members"]["each"]] + [a["accuracy"] for a in metrics["aggregates"].values()]

    def bars(ax):
        ax.barh(names[::-1], values[::-1])
        ax.set_xlabel("pairwise accuracy")
        ax.set_xlim(min(values) - 0.05, max(values) + 0.02)

    wrong, spread, _ = _pair_spreads(examples, details)
    order = sorted(range(len(spread)), key=lambda k: spread[k])
    parts = [order[len(order) * q // 4:len(order) * (q + 1) // 4] for q in range(4)]
    by_q = [1 - sum(wrong[k] for k in p) / len(p) if p else 0.0 for p in parts]

    def quarters(ax):
        ax.bar(["most certain", "2nd", "3rd", "least certain"], by_q)
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1)

    u = metrics["uncertainty"]
    rows = [[k, f"{v:.4f}" if isinstance(v, float) else v] for k, v in u.items()]
    return ["<h2>Ensemble and members</h2>" + _figure(bars),
            "<h2>Does the spread predict mistakes?</h2>" + _table(rows, ["metric", "value"]) + _figure(quarters)]


def write_ensemble_report(path: str, metrics: dict, examples: list, details: list[list[dict]], model: str,
                          data: str) -> str:
    head = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    rows = [[k, f"{v:.4f}" if isinstance(v, float) else v] for k, v in head.items()]
    return page(path, [f"<h1>Reward ensemble report</h1><p>model <code>{html.escape(model)}</code>, data "
                       f"<code>{html.escape(data)}</code></p>", "<h2>Headline</h2>" + _table(rows, ["metric", "value"]),
                       *ensemble_sections(metrics, examples, details)])
