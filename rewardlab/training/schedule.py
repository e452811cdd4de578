"""What each optimizer step sees and at which learning rate: pure functions of the config.

- :func:`lr_at`: linear warmup, then linear / cosine decay to 0, or constant.
- :func:`epoch_order`: the order examples are visited in one epoch, a permutation seeded by
  (seed, epoch), so a resumed run continues on exactly the examples it would have seen.
- :func:`split_step`: one process's share of a step, as micro-batches. A step's unit is the
  example (a prompt with all its completions), so a prompt is never split across steps or
  processes.
"""

from __future__ import annotations

import math

import torch

from ..config import OptimArgs


def lr_at(step: int, total: int, optim: OptimArgs) -> float:
    """Learning rate for optimizer step ``step`` (0-based): linear warmup, then decay to 0."""
    warmup = math.ceil(optim.warmup_ratio * total)
    if step < warmup:
        return optim.lr * (step + 1) / warmup
    if optim.lr_schedule == "constant":
        return optim.lr
    progress = (step - warmup) / max(1, total - warmup)
    if optim.lr_schedule == "cosine":
        return optim.lr * 0.5 * (1 + math.cos(math.pi * progress))
    return optim.lr * (1 - progress)


def epoch_order(n: int, epoch: int, seed: int, per_step: int, lengths: list[int] | None = None) -> list[int]:
    """The order examples are visited in one epoch: a permutation seeded by (seed, epoch).

    With ``lengths`` (group_by_length), each window of 64 steps is sorted by length and its
    steps are shuffled again, so a step holds examples of similar length (less padding; the
    padded forward of encoders gains most) while the epoch stays randomly ordered at large scale.
    """
    gen = torch.Generator().manual_seed(seed + epoch)
    order = torch.randperm(n, generator=gen).tolist()
    if lengths is None:
        return order
    window = per_step * 64
    out: list[int] = []
    for start in range(0, n, window):
        part = sorted(order[start:start + window], key=lambda i: -lengths[i])
        steps = [part[i:i + per_step] for i in range(0, len(part), per_step)]
        full = [k for k in range(len(steps)) if len(steps[k]) == per_step]
        order_k = [full[k] for k in torch.randperm(len(full), generator=gen).tolist()]
        order_k += [k for k in range(len(steps)) if len(steps[k]) < per_step]  # a short step stays last
        out += [i for k in order_k for i in steps[k]]
    return out


def split_step(items: list, batch_size: int, rank: int, world: int) -> list[list]:
    """This process's share of one optimizer step's examples, as micro-batches."""
    mine = items[rank::world]
    return [mine[i:i + batch_size] for i in range(0, len(mine), batch_size)]
