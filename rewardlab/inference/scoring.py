"""The ways to ask a loaded model for rewards, all on one path: :meth:`score_details`, which a
:class:`rewardlab.inference.RewardModel` hands to its kind (``score_texts``) and an
:class:`rewardlab.inference.ensemble.Ensemble` to each member. Training's evaluation,
``rewardlab.evaluate``, ``score``, ``serve`` and the Python API all come here."""

from __future__ import annotations

from ..data.text import plain_text


class Scores:
    """What :class:`RewardModel` and :class:`Ensemble` answer, written once on their
    ``score_details`` (texts -> one detail per text: ``reward`` and what the kind reads)."""

    def score_details(self, texts: list, batch_size: int = 16, max_tokens: int = 16384, share_prefixes: bool = True,
                      encoded: list | None = None, cache=None, groups: list | None = None):
        raise NotImplementedError

    def score_texts(self, texts: list, batch_size: int = 16, max_tokens: int = 16384, share_prefixes: bool = True,
                    encoded: list | None = None, cache=None):
        """The reward of each :class:`rewardlab.data.Text`, in input order, and the counts
        (truncated texts; ``sent`` and ``processed`` tokens)."""
        details, counts = self.score_details(texts, batch_size, max_tokens, share_prefixes, encoded, cache)
        return [d["reward"] for d in details], counts

    def group_details(self, groups: list[list], batch_size: int = 16, max_tokens: int = 16384):
        """:meth:`score_details` per group of texts that share a prompt (a pair, K completions): a
        kind that compares texts compares a group's only; truncation is counted per group."""
        flat = [t for g in groups for t in g]
        details, counts = self.score_details(flat, batch_size, max_tokens, True, None, None, indices(groups))
        return split(details, groups), counts

    def score_groups(self, groups: list[list], batch_size: int = 16, max_tokens: int = 16384):
        """The rewards of each group of texts (see :meth:`group_details`) and the counts."""
        details, counts = self.group_details(groups, batch_size, max_tokens)
        return [[d["reward"] for d in g] for g in details], counts

    def score(self, prompts: list[str], completions: list[str], batch_size: int = 16,
              max_tokens: int = 16384) -> list[float]:
        """One reward per (prompt, completion), batched. Prompts are plain text (apply a chat
        template yourself, or pass message lists through ``rewardlab score``)."""
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        texts = [plain_text(p, c, self.tokenizer) for p, c in zip(prompts, completions)]
        return self.score_texts(texts, batch_size, max_tokens)[0]


def indices(groups: list[list]) -> list[list[int]]:
    """Each group's positions in the flat list of all groups' items."""
    out, at = [], 0
    for g in groups:
        out.append(list(range(at, at + len(g))))
        at += len(g)
    return out


def split(flat: list, groups: list[list]) -> list[list]:
    """A flat list cut back into the sizes of ``groups``."""
    out, pos = [], 0
    for g in groups:
        out.append(flat[pos:pos + len(g)])
        pos += len(g)
    return out
