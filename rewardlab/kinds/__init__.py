"""Model kinds: what differs between them, one small module each.

A kind module provides: ``head(objective, data_path)`` (the transformers head: 'sequence' or
'token', its number of outputs, tokens to add, settings saved with the model),
``parser(objective)`` (row -> example, a one-line DataError for a bad row), ``describe``,
``check(example, where, objective)`` (the rules of its loss), ``encode`` (examples ->
(example, token ids) items), ``units(item, objective)`` (what the exact accumulation rule
counts), ``forward_module`` (the nn.Module the loop wraps), ``batch(items, pad_id, path,
device)``, ``loss(outputs, items, objective)`` -> (summed loss, step statistics named in
``STATS``), ``summarize(sums)``, and ``score`` / ``metrics`` / ``format_eval`` for evaluation.
The training loop only ever calls these; it never names a kind.

- preference: one reward per completion from pairs / K-wise orders (Bradley-Terry, ...);
- orm: outcome reward model, per-token P(correct) (Cobbe et al. 2021);
- prm: process reward model, a label per reasoning step (Lightman et al. 2023);
- value: per-token value function regressed on the (discounted) return;
- regression: N attribute ratings per completion (HelpSteer, ArmoRM's first stage).
"""

from . import orm, preference, prm, regression, value

KINDS = {"preference": preference, "orm": orm, "prm": prm, "value": value, "regression": regression}


def get(name: str):
    return KINDS[name]
