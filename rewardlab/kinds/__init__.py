"""Model kinds: what differs between them, one small module each.

A kind module provides: ``describe(objective)``, ``check(example, where, objective)`` (the
rules of its loss), ``encode`` (examples -> (example, token ids) items), ``units(example,
objective)`` (what the exact accumulation rule counts), ``forward_module`` (the nn.Module the
loop wraps), ``batch(items, pad_id, path, device)``, ``loss(outputs, items, objective)`` ->
(summed loss, step statistics named in ``STATS``), ``summarize(sums)``, and ``score`` / ``metrics`` /
``format_eval`` for evaluation. The training loop only ever calls these; it never names a kind.
"""

from . import preference

KINDS = {"preference": preference}


def get(name: str):
    return KINDS[name]
