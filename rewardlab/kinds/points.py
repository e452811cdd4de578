"""The defaults of a kind's optional members (protocol.py), which are the pointwise kinds'
behaviour: items are (Point, Encoded), one completion per example, outputs read at the
positions that carry a label, each scored text answered by the kind's ``readout``. The kinds
that learn from one completion (orm, prm, value, regression, genrm, implicit_prm) write only
what differs from these; the others use the helpers below where they fit."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.pointwise import Point, encode_points, text_point
from ..data.text import Text
from ..eval.pointwise import format_pointwise
from ..models.heads import HeadOutputs, make_batch
from ..models.readout import as_json, score_points
from .protocol import HeadSpec, ScoreCall

# eval formats of the kind's own beside the benchmarks, which every kind takes (one that needs step
# scores says so to a kind without them): none for these kinds
FORMATS: tuple[str, ...] = ()


@dataclass
class NoOptions:
    """This kind has no options of its own."""


def texts(point: Point) -> list[Text]:
    return [Text(point.prompt, point.completion, point.templated, point.ends)]


def no_check(example, where: str, obj) -> None:
    """Rows these kinds parse are usable by their loss as they are."""


def no_prepare(model, items: list, obj, device) -> list:
    """Items need nothing from the model."""
    return items


def units(item, obj) -> int:
    """A labelled position (token or step) is the unit its loss averages over."""
    return len(item[1].reads[0])


def token_head(obj, data=None) -> HeadSpec:
    """One output per token: ``AutoModelForTokenClassification`` with one label."""
    return HeadSpec("token", 1)


def encoder(read: str):
    """``encode`` for a read mode ('tokens', 'last', 'steps'; 'sequence' encodes as 'last');
    tokenizing in several processes and the tokenized cache are preference-data features, so
    they are ignored here."""
    def encode(tokenizer, points: list[Point], max_length: int, obj=None, num_proc: int = 1, cache_dir: str = ""):
        return encode_points(tokenizer, points, max_length, "last" if read == "sequence" else read)
    return encode


def batch(items: list, pad_id: int, path: str, device) -> dict:
    return make_batch([enc.sequences for _, enc in items], pad_id, path, device,
                      reads=[enc.reads for _, enc in items])


def sequence_batch(items: list, pad_id: int, path: str, device) -> dict:
    """One output vector per sequence (a sequence head): no read positions."""
    return make_batch([enc.sequences for _, enc in items], pad_id, path, device)


def split(outputs: torch.Tensor, items: list) -> list[torch.Tensor]:
    """The flat (R, labels) outputs of a batch, cut back into one tensor per item."""
    out, at = [], 0
    for _, enc in items:
        n = len(enc.reads[0])
        out.append(outputs[at:at + n])
        at += n
    return out


def groups_of(points: list[Point]) -> list[list[int]] | None:
    """Indices of points that share a prompt, for best-of-N (None when no prompt has two)."""
    by: dict[str, list[int]] = {}
    for i, p in enumerate(points):
        by.setdefault(p.prompt, []).append(i)
    groups = [g for g in by.values() if len(g) > 1]
    return groups or None


def only(details: list[list[dict]], key: str = "reward") -> list:
    """One value per example from its one scored text (a read cut off is NaN, as the metrics expect)."""
    return [nan(d[0][key]) for d in details]


def nan(value):
    """A detail's value with None (JSON's stand-in for a read cut off) back as NaN; lists too."""
    if isinstance(value, list):
        return [nan(v) for v in value]
    return float("nan") if value is None else value


def report_page(path: str, name: str, metrics: dict, sections: list[str], model: str, data: str) -> str:
    from ..eval.report_kinds import write_kind_report

    return write_kind_report(path, name, metrics, sections, model, data)


def score_with(read_mode, scored_point, readout):
    """The default ``score_texts``: each text alone, ``scored_point`` -> the forward at its
    ``read_mode``'s positions -> ``readout`` (NaN reads as None)."""
    def score_texts(rm, texts: list, call: ScoreCall):
        pts = [scored_point(t, call) for t in texts]
        outputs, counts = score_points(rm.model, rm.tokenizer, pts, rm.max_length, read_mode(call.per_token),
                                       call.batch_size, call.max_tokens, call.share_prefixes)
        return [as_json(readout(o, rm.settings, call)) for o in outputs], counts
    return score_texts


def defaults(own: dict) -> dict:
    """The optional members for a kind whose module defines ``own`` (some defaults use the
    kind's own members: its read mode, step marker, readout)."""
    name = own["NAME"]
    read_mode = own.get("read_mode", lambda per_token: "last")
    step_marker = own.get("step_marker", lambda obj: None)

    def scored_point(text: Text, call: ScoreCall) -> Point:
        """The text as it is; with a step marker, its steps marked as training marks them."""
        return text_point(text, step_marker(call.options))

    def report(path, metrics, examples, details, model, data, obj) -> str:
        return report_page(path, name, metrics, [], model, data)

    point = own.get("scored_point", scored_point)
    return {
        "Options": NoOptions, "describe": lambda obj: f"kind {name}",
        "STATS": (), "head": token_head, "check": no_check, "encode": encoder(read_mode(False)), "units": units,
        "batch": batch, "forward_module": HeadOutputs, "summarize": lambda sums: {}, "prepare": no_prepare,
        "PER_TOKEN": False, "step_marker": step_marker, "read_mode": read_mode, "scored_point": point,
        "readout": None, "score_texts": score_with(read_mode, point, own.get("readout")),
        "FORMATS": FORMATS, "HEADLINE": "accuracy", "texts": texts, "format_eval": format_pointwise, "report": report,
    }
