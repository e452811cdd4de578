"""What the pointwise kinds (orm, prm, value, regression, genrm) share: items are (Point, Encoded),
one completion per example, outputs read at the positions that carry a label."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.pointwise import Point, encode_points, text_point
from ..data.text import Text
from ..eval.benchmarks import FORMATS as BENCHMARKS
from ..models.heads import make_batch
from ..models.readout import as_json, score_points

ONE_REWARD_HEAD = False  # rewards come from the kind's readout, not one output
# eval reads the kind's own rows, or any benchmark (one that needs step scores says so to a kind without them)
FORMATS: tuple[str, ...] = tuple(BENCHMARKS)


def texts(point: Point) -> list[Text]:
    return [Text(point.prompt, point.completion, point.templated, point.ends)]


@dataclass
class NoOptions:
    """This kind has no options of its own."""


def no_marker(settings: dict) -> None:
    return None


def scored_point(text: Text, settings: dict) -> Point:
    """A text scored as it is (a ``steps`` row keeps its own step ends)."""
    return text_point(text)


def score_texts(rm, texts: list, per_token: bool, batch_size: int, max_tokens: int, share_prefixes: bool,
                groups: list | None = None):
    """Each text scored alone: the kind's ``scored_point``, the forward at its ``read_mode``'s
    positions, the kind's ``readout`` (NaN reads as None)."""
    rules = rm.rules
    pts = [rules.scored_point(t, rm.settings) for t in texts]
    outputs, counts = score_points(rm.model, rm.tokenizer, pts, rm.max_length, rules.read_mode(per_token),
                                   batch_size, max_tokens, share_prefixes)
    return [as_json(rules.readout(o, rm.settings, per_token)) for o in outputs], counts


def no_prepare(model, items: list, obj, device) -> list:
    """Items need nothing from the model."""
    return items


def report_page(path: str, name: str, metrics: dict, sections: list[str], model: str, data: str) -> str:
    from ..eval.report_kinds import write_kind_report

    return write_kind_report(path, name, metrics, sections, model, data)


def units(item, obj) -> int:
    """A labelled position (token or step) is the unit its loss averages over."""
    return len(item[1].reads[0])


def no_check(example, where: str, obj) -> None:
    """Rows these kinds parse are usable by their loss as they are."""


def token_head(obj, data_path: str = "") -> dict:
    """One output per token: ``AutoModelForTokenClassification`` with one label."""
    return {"head": "token", "num_labels": 1}


def encoder(read: str):
    """``kind.encode`` for a read mode ('tokens', 'last', 'steps'); tokenizing in several
    processes and the tokenized cache are preference-data features, so they are ignored here."""
    def encode(tokenizer, points: list[Point], max_length: int, num_proc: int = 1, cache_dir: str = ""):
        return encode_points(tokenizer, points, max_length, read)
    return encode


def batch(items: list, pad_id: int, path: str, device) -> dict:
    return make_batch([enc.sequences for _, enc in items], pad_id, path, device,
                      reads=[enc.reads for _, enc in items])


def split(outputs: torch.Tensor, items: list) -> list[torch.Tensor]:
    """The flat (R, labels) outputs of a batch, cut back into one tensor per item."""
    out, at = [], 0
    for _, enc in items:
        n = len(enc.reads[0])
        out.append(outputs[at:at + n])
        at += n
    return out


def score(model, tokenizer, points: list[Point], max_length: int, batch_size: int, read: str):
    """Outputs per point (see models.readout.score_points) and the truncation counts."""
    return score_points(model, tokenizer, points, max_length, read, batch_size)


def groups_of(points: list[Point]) -> list[list[int]] | None:
    """Indices of points that share a prompt, for best-of-N (None when no prompt has two)."""
    by: dict[str, list[int]] = {}
    for i, p in enumerate(points):
        by.setdefault(p.prompt, []).append(i)
    groups = [g for g in by.values() if len(g) > 1]
    return groups or None
