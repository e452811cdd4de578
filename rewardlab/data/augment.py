"""Robust pair augmentation (RRM: Liu et al. 2024, "RRM: Robust Reward Model Training Mitigates
Reward Hacking"; reference RLHFlow/RLHF-Reward-Modeling). A reward that follows style rather
than the prompt ranks a polished answer to another question above a plain right one. RRM adds
comparisons that only the prompt can decide: for each training example (x, its completions) two
completions written for another prompt x' are appended under x, ranked below every completion
of x and tied with each other (neither answers x). A pair (y_w > y_l) becomes the group
y_w > y_l > {a, b}: four more strict pairs (y_w > a, y_w > b, y_l > a, y_l > b) and one tie (a ~ b),
which a loss that learns from ties (davidson, plackett_luce) uses and bt leaves out. A scored row's
borrowed completions score 1 below its lowest.
The other example is drawn with a seeded generator, so a run and its resume see the same data.
"""

from __future__ import annotations

import random
from dataclasses import replace

from .preference import Example


def rrm_augment(examples: list[Example], seed: int = 0) -> tuple[list[Example], str]:
    """Every example with two completions of another prompt appended, below its own and tied; and
    a one-line account of what was added. Needs examples of at least two different prompts."""
    prompts = sorted({e.prompt for e in examples})
    if len(prompts) < 2:
        raise ValueError("RRM augmentation needs rows of at least two different prompts (a response to another "
                         f"prompt is what it adds); the data has {len(prompts)}")
    rng = random.Random(seed)
    by_prompt: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        by_prompt.setdefault(e.prompt, []).append(i)
    out, strict, ties = [], 0, 0
    for e in examples:
        other = examples[rng.choice(by_prompt[rng.choice([p for p in prompts if p != e.prompt])])]
        borrowed = rng.sample(other.completions, 2) if len(other.completions) > 2 else list(other.completions)
        bottom = max((t for t in e.tiers if t is not None), default=0) + 1
        tiers = list(e.tiers) + [bottom] * len(borrowed)
        scores = None if e.scores is None else list(e.scores) + [min(e.scores) - 1.0] * len(borrowed)
        augmented = replace(e, completions=list(e.completions) + borrowed, tiers=tiers, scores=scores, answers=None)
        strict += len(augmented.strict_pairs()) - len(e.strict_pairs())
        ties += len(augmented.tied_pairs()) - len(e.tied_pairs())
        out.append(augmented)
    return out, (f"RRM: {len(examples)} examples each given 2 completions of another prompt, below their own: "
                 f"{strict} more strict pairs, {ties} more ties (seed {seed})")
