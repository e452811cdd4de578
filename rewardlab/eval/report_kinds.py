"""Report sections the kinds draw (each kind's ``report`` picks its own), and the reports for
several models and for benchmark formats: ``rewardlab eval ... --report``.

- orm: the reliability diagram of P(correct) against the labels, the score distributions of
  correct and incorrect completions, and the best-of-N curve when prompts have several rows;
- prm: the step-score distributions of correct and wrong steps, and solutions drawn step by
  step, each step coloured by its score (red 0 .. green 1), the first labelled error and the
  first step under the threshold marked;
- value, regression: predictions against targets;
- several models (``--model A --model B``): a leaderboard with the paired bootstrap interval of
  every difference in accuracy;
- benchmark formats (RewardBench, RewardBench 2, RM-Bench): the benchmark's numbers, bars per
  subset or section, and RM-Bench's chosen-style x rejected-style accuracy matrix per domain.
Figures come from matplotlib through report.py's helpers, inlined; the page needs no network.
"""

from __future__ import annotations

import html
from pathlib import Path

from .diagnostics import best_of_n_curve, expected_calibration_error
from .report import _figure, _table, _tail, best_of_n_figure, page


def _headline(metrics: dict, prefix: str = "") -> list[list]:
    """Every number in a (nested) metrics dict, as (dotted key, value) rows."""
    rows = []
    for k, v in metrics.items():
        if isinstance(v, dict):
            rows += _headline(v, f"{prefix}{k}.")
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            rows.append([prefix + k, f"{v:.4f}" if isinstance(v, float) else v])
    return rows


def _histograms(good: list[float], bad: list[float], xlabel: str, names=("correct", "incorrect")) -> str:
    def draw(ax):
        ax.hist(good, bins=30, alpha=0.6, label=names[0])
        ax.hist(bad, bins=30, alpha=0.6, label=names[1])
        ax.set_xlabel(xlabel)
        ax.legend()
    return _figure(draw)


def _reliability(probs: list[float], labels: list[float]) -> str:
    cal = expected_calibration_error(probs, labels)

    def draw(ax):
        ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect")
        ax.plot([b["confidence"] for b in cal["bins"]], [b["accuracy"] for b in cal["bins"]], "o-", label="model")
        ax.set_xlabel("predicted P(correct)")
        ax.set_ylabel("share labelled correct")
        ax.legend()
    return f"<h2>Calibration against the labels (ECE {cal['ece']:.4f})</h2>" + _figure(draw)


def _best_of_n(examples: list, scores: list[float], correct: list[bool]) -> str:
    by: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        by.setdefault(e.prompt, []).append(i)
    groups = [g for g in by.values() if len(g) > 1]
    if not groups:
        return ""
    k = min(len(g) for g in groups)
    return best_of_n_figure(best_of_n_curve([[scores[i] for i in g[:k]] for g in groups],
                                            [[correct[i] for i in g[:k]] for g in groups]))


def _colour(score: float) -> str:
    if score != score:  # cut off by truncation
        return "#ddd"
    return f"hsl({120 * max(0.0, min(1.0, score)):.0f},70%,80%)"


def _steps_html(example, scores: list[float], threshold: float, good: list[bool]) -> str:
    first_label = next((i for i, ok in enumerate(good) if not ok), -1)
    first_pred = next((i for i, s in enumerate(scores) if s == s and s < threshold), -1)
    steps = [example.completion[a:b] for a, b in zip([0] + example.ends[:-1], example.ends)]
    parts = []
    for i, (text, score) in enumerate(zip(steps, scores)):
        marks = (" <b>&larr; first labelled error</b>" if i == first_label else "") + \
                (" <b>&larr; first step under the threshold</b>" if i == first_pred else "")
        parts.append(f'<div class=step style="background:{_colour(score)}" title="score {score:.3f}">'
                     f"<small>{score:.3f}</small> {html.escape(text.strip())}{marks}</div>")
    return f"<div class=solution><p><i>{html.escape(_tail(example.prompt, 300))}</i></p>{''.join(parts)}</div>"


def prm_sections(metrics: dict, examples: list, scores: list[list[float]], scheme: str) -> list[str]:
    labelled = [(e, s) for e, s in zip(examples, scores) if e.target is not None]
    good = lambda t: t >= 0 if scheme == "ternary" else t >= 0.5  # noqa: E731
    right = [x for e, s in labelled for x, t in zip(s, e.target) if good(t) and x == x]
    wrong = [x for e, s in labelled for x, t in zip(s, e.target) if not good(t) and x == x]
    out = []
    if right or wrong:
        out.append("<h2>Step scores of correct and wrong steps</h2>" +
                   _histograms(right, wrong, "step score", ("correct steps", "wrong steps")))
    threshold = metrics.get("processbench", {}).get("threshold", 0.5)
    shown = [(e, s) for e, s in labelled if not all(good(t) for t in e.target)][:6] + \
        [(e, s) for e, s in labelled if all(good(t) for t in e.target)][:2]
    if shown:
        out.append(f"<h2>Solutions step by step (threshold {threshold:g})</h2>" + "".join(
            _steps_html(e, s, threshold, [good(t) for t in e.target]) for e, s in shown))
    return out


def scatter(pred: list[float], true: list[float], name: str) -> str:
    """Predictions against targets (value and regression models)."""
    def draw(ax):
        ax.scatter(true, pred, s=8, alpha=0.5)
        lo, hi = min(true + pred), max(true + pred)
        ax.plot([lo, hi], [lo, hi], "--", color="gray")
        ax.set_xlabel(f"target {name}")
        ax.set_ylabel("prediction")
    return f"<h2>{html.escape(name)}</h2>" + _figure(draw)


def orm_sections(examples: list, probs: list[float]) -> list[str]:
    """Calibration, P(correct) of correct and incorrect completions, best-of-N."""
    labels = [e.target for e in examples]
    return [_reliability(probs, labels),
            "<h2>P(correct) of correct and incorrect completions</h2>" + _histograms(
                [p for p, y in zip(probs, labels) if y >= 0.5], [p for p, y in zip(probs, labels) if y < 0.5],
                "P(correct)"),
            _best_of_n(examples, probs, [y >= 0.5 for y in labels])]


def write_kind_report(path: str, kind: str, metrics: dict, sections: list[str], model: str, data: str) -> str:
    """A kind's report page: the headline numbers, then the kind's own sections; returns its path."""
    parts = [f"<h1>Reward model report: {html.escape(kind)}</h1><p>model <code>{html.escape(model)}</code>, "
             f"data <code>{html.escape(data)}</code></p>", "<h2>Headline</h2>" + _table(_headline(metrics),
                                                                                         ["metric", "value"])]
    return page(path, parts + sections)


def write_comparison_report(path: str, results: dict, comparisons: list[dict], data: str) -> str:
    """Several models on the same rows: a leaderboard and every pairwise difference."""
    names = sorted(results, key=lambda m: -(results[m].get("accuracy") or 0))
    board = [[i + 1, m, f"{results[m]['accuracy']:.4f}", results[m].get("n", results[m].get("n_pairs", ""))]
             for i, m in enumerate(names)]

    def bars(ax):
        ax.barh([Path(m).name or m for m in names][::-1], [results[m]["accuracy"] for m in names][::-1])
        ax.set_xlim(0, 1)
        ax.set_xlabel("accuracy")

    diffs = [[c["a"], c["b"], f"{c['difference']:+.4f}", f"{c['low']:+.4f} .. {c['high']:+.4f}", f"{c['level']:.0%}"]
             for c in comparisons]
    parts = [f"<h1>Reward models side by side</h1><p>data <code>{html.escape(data)}</code></p>",
             "<h2>Leaderboard</h2>" + _table(board, ["rank", "model", "accuracy", "n"]) + _figure(bars),
             "<h2>Differences (paired bootstrap over the same rows)</h2>" +
             _table(diffs, ["model a", "model b", "a - b", "interval", "level"])]
    biased = [m for m in names if "bias" in results[m]]
    if biased:
        keys = list(results[biased[0]]["bias"])

        def cell(v):
            return "n/a" if v["value"] is None else f"{v['value']:+.4f}" + (
                f" [{v['low']:+.4f}, {v['high']:+.4f}]" if v["low"] is not None else "")
        rows = [[m] + [cell(results[m]["bias"][k]) for k in keys] for m in biased]
        parts.append("<h2>Length bias, 95% bootstrap intervals over the pairs</h2>" + _table(rows, ["model", *keys]))
    return page(path, parts)


def _bars(values: dict[str, float], title: str) -> str:
    names = list(values)

    def draw(ax):
        ax.barh(names[::-1], [values[n] or 0 for n in names][::-1])
        ax.set_xlim(0, 1)
        ax.set_xlabel("accuracy")
    return f"<h2>{html.escape(title)}</h2>" + _figure(draw)


def _matrix(m: list[list[float]], title: str) -> str:
    styles = ["concise", "detailed", "markdown"]

    def draw(ax):
        ax.imshow(m, vmin=0, vmax=1, cmap="viridis")
        for i, row in enumerate(m):
            for j, v in enumerate(row):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="white" if v < 0.6 else "black")
        ax.set_xticks(range(3), styles)
        ax.set_yticks(range(3), styles)
        ax.set_xlabel("rejected style")
        ax.set_ylabel("chosen style")
    return f"<h3>{html.escape(title)}</h3>" + _figure(draw)


def write_benchmark_report(path: str, benchmark: str, metrics: dict, model: str, data: str) -> str:
    """The report of a benchmark-format evaluation (its own scoring rule's numbers)."""
    parts = [f"<h1>{html.escape(benchmark)} report</h1><p>model <code>{html.escape(model)}</code>, data "
             f"<code>{html.escape(data)}</code></p>",
             "<h2>Headline</h2>" + _table([r for r in _headline(metrics) if ".matrix" not in r[0]], ["metric", "value"])]
    for key, title in (("sections", "Sections"), ("subsets", "Per subset"), ("categories", "Per category")):
        if key == "categories" and ("subsets" in metrics or "domains" in metrics):
            continue  # the same numbers, drawn above or below
        if isinstance(metrics.get(key), dict) and metrics[key]:
            parts.append(_bars(metrics[key], title))
    domains = metrics.get("domains") or {}
    if domains:
        parts.append(_bars({d: v["score"] for d, v in domains.items()}, "Per domain (mean of easy, normal, hard)"))
        parts.append("<h2>Chosen style x rejected style (RM-Bench)</h2>" + "".join(
            _matrix(v["matrix"], d) for d, v in domains.items() if "matrix" in v))
    return page(path, parts)


def _intervals(board: dict[str, dict[str, dict]], columns: list[str]) -> str:
    """Every model's headline on every benchmark, a point and its bootstrap interval, benchmarks
    side by side."""
    models = list(board)

    def draw(ax):
        width = 0.8 / max(len(models), 1)
        for k, m in enumerate(models):
            xs = [i + (k - (len(models) - 1) / 2) * width for i in range(len(columns))]
            cells = [board[m][c] for c in columns]
            ys = [c["number"] for c in cells]
            low = [c["number"] - c["low"] if c["low"] is not None else 0 for c in cells]
            high = [c["high"] - c["number"] if c["high"] is not None else 0 for c in cells]
            ax.errorbar(xs, ys, yerr=[low, high], fmt="o", capsize=3, label=m.rsplit("/", 1)[-1][:30])
        ax.set_xticks(range(len(columns)))
        ax.set_xticklabels([c.split(":")[0] for c in columns])
        ax.set_ylabel("headline (95% interval)")
        ax.legend(fontsize=7)
    return "<h2>Headlines with their intervals</h2>" + _figure(draw)


def write_leaderboard_report(path: str, board: dict[str, dict[str, dict]], columns: list[str]) -> str:
    """Models x benchmark files: each benchmark's own headline number with its bootstrap
    interval (rows resampled, the benchmark's rule applied again), then each file's categories."""
    def cell(c: dict) -> str:
        ci = f" [{c['low']:.3f}, {c['high']:.3f}]" if c["low"] is not None else ""
        return f"{c['number']:.4f}{ci}"

    head = ["model"] + [f"{col} ({next(iter(board.values()))[col]['headline']})" for col in columns]
    parts = ["<h1>Leaderboard</h1><p>Each benchmark scored by its own rule (rewardlab/eval/benchmarks/); "
             "95% percentile bootstrap intervals over the benchmark's rows.</p>",
             _table([[m] + [cell(cells[col]) for col in columns] for m, cells in board.items()], head),
             _intervals(board, columns)]
    for col in columns:
        names = sorted({k for cells in board.values() for k in (cells[col]["metrics"].get("categories") or {})})
        if names:
            rows = [[m] + [f"{cells[col]['metrics']['categories'].get(k, float('nan')):.4f}" for k in names]
                    for m, cells in board.items()]
            parts.append(f"<h2>{html.escape(col)}: per category</h2>" + _table(rows, ["model"] + names))
    return page(path, parts)
