"""One self-contained HTML report of an evaluation: ``rewardlab eval ... --report report.html``.

Figures are drawn with matplotlib (Agg) and inlined as PNG data URIs, so the file opens
anywhere with no network. Sections: the headline numbers, per-subset accuracy, the reward
distributions of chosen vs rejected, the reliability diagram, the length diagnostics, the
best-of-N curve (groups with 0/1 scores), and the worst mistakes side by side.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from ..errors import ConfigError


def _figure(draw) -> str:
    """A matplotlib figure drawn by ``draw(ax)``, as an <img> with an inline PNG."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("--report draws its figures with matplotlib: pip install 'rewardlab[report]'") from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=100)
    draw(ax)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def best_of_n_figure(curve: dict) -> str:
    """The best-of-N curve (model, random pick, oracle) under a heading."""
    def draw(ax):
        for key in ("model", "random", "oracle"):
            ax.plot(curve["n"], curve[key], "o-", label=key)
        ax.set_xlabel("N candidates")
        ax.set_ylabel("accuracy of the pick")
        ax.legend()
    return "<h2>Best-of-N</h2>" + _figure(draw)


def _table(rows: list[list], head: list[str]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


def _short(text: str, n: int = 400) -> str:
    return text if len(text) <= n else text[:n] + " ..."


def _tail(text: str, n: int = 400) -> str:
    """The end of a prompt: the turn being answered."""
    return text if len(text) <= n else "... " + text[-n:]


def _pair_sections(metrics: dict, examples: list, rewards: list[list[float]]) -> list[str]:
    out = []
    chosen, rejected = [r[0] for r in rewards], [r[1] for r in rewards]

    def dist(ax):
        ax.hist(chosen, bins=30, alpha=0.6, label="chosen")
        ax.hist(rejected, bins=30, alpha=0.6, label="rejected")
        ax.set_xlabel("reward")
        ax.legend()

    out.append("<h2>Rewards of chosen and rejected</h2>" + _figure(dist))
    bins = metrics["calibration"]["bins"]

    def reliability(ax):
        ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect")
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", label="model")
        ax.set_xlabel("P(first > second) = sigma(r1 - r2)")
        ax.set_ylabel("observed frequency")
        ax.legend()

    out.append(f"<h2>Calibration (ECE {metrics['calibration']['ece']:.4f})</h2>" + _figure(reliability))
    ln = metrics["length"]
    verdict = "<p class=warn>This model tracks length: it prefers the longer answer on nearly every pair.</p>" \
        if ln["tracks_length"] else ""

    def length(ax):
        names = ["longer wins\n(baseline)", "model, chosen\nlonger", "model, chosen\nshorter"]
        values = [ln["baseline_accuracy"] or 0, ln["accuracy_chosen_more"] or 0, ln["accuracy_chosen_less"] or 0]
        ax.bar(names, values, color=["gray", "tab:blue", "tab:orange"])
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy")

    def scatter(ax):
        for k, (texts, values) in enumerate(((
                [e.chosen for e in examples], chosen), ([e.rejected for e in examples], rejected))):
            ax.scatter([len(t) for t in texts], values, s=8, alpha=0.5, label=("chosen", "rejected")[k])
        ax.set_xscale("symlog")
        ax.set_xlabel("completion length (characters)")
        ax.set_ylabel("reward")
        ax.legend()

    out.append("<h2>Length bias</h2>" + verdict + _figure(length) + _figure(scatter) + _table(
        [[k, v if not isinstance(v, float) else f"{v:.4f}"] for k, v in ln.items()], ["length", "value"]))
    # Mistakes only (the chosen reply not above the rejected one), worst first; none is said.
    worst = sorted((i for i in range(len(rewards)) if chosen[i] <= rejected[i]),
                   key=lambda i: chosen[i] - rejected[i])[:10]
    rows = [[f"{chosen[i] - rejected[i]:+.3f}", _tail(examples[i].prompt), _short(examples[i].chosen),
             _short(examples[i].rejected), f"{len(examples[i].chosen)} / {len(examples[i].rejected)}"] for i in worst]
    if not rows:
        out.append(f"<h2>Worst mistakes</h2><p>None: the chosen reply scored above the rejected one in all "
                   f"{len(rewards)} pairs.</p>")
        return out
    out.append("<h2>Worst mistakes</h2>" + _table(rows, ["r_chosen - r_rejected", "prompt", "chosen", "rejected",
                                                          "lengths (chars)"]))
    return out


def write_report(path: str, metrics: dict, examples: list, rewards: list[list[float]], model: str, data: str) -> str:
    """Write the report; returns its path."""
    parts = [f"<h1>Reward model report</h1><p>model <code>{html.escape(model)}</code>, data "
             f"<code>{html.escape(data)}</code></p>"]
    headline = [[k, f"{v:.4f}" if isinstance(v, float) else v] for k, v in metrics.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)]
    parts.append("<h2>Headline</h2>" + _table(headline, ["metric", "value"]))
    subsets = metrics.get("subsets") or {}
    if subsets:
        names = list(subsets)

        def bars(ax):
            ax.barh(names, [subsets[s]["accuracy"] or 0 for s in names])
            ax.set_xlim(0, 1)
            ax.set_xlabel("accuracy")

        parts.append("<h2>Per subset</h2>" + _figure(bars))
    if "calibration" in metrics:
        parts += _pair_sections(metrics, examples, rewards)
    if "best_of_n" in metrics:
        parts.append(best_of_n_figure(metrics["best_of_n"]))
    return page(path, parts)


STYLE = ("body{font-family:sans-serif;max-width:1000px;margin:2em auto}table{border-collapse:collapse;"
         "margin:1em 0}td,th{border:1px solid #ccc;padding:4px;vertical-align:top;font-size:13px}"
         ".warn{color:#b00;font-weight:bold}img{max-width:100%}.solution{margin:1em 0;border-left:3px solid #999;"
         "padding-left:8px}.step{padding:2px 4px;margin:1px 0;font-size:13px}")


def page(path: str, parts: list[str]) -> str:
    """Write the sections as one self-contained HTML page; returns its path."""
    html_page = f"<!doctype html><html><head><meta charset=utf-8><title>rewardlab report</title><style>{STYLE}" \
                f"</style></head><body>{''.join(parts)}</body></html>"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(html_page, encoding="utf-8")
    return path
