"""A small preference dataset generated on the spot, for the demo and the tests.

The demo must run on a fresh machine with nothing downloaded, so rewardlab writes its own
pairs: a question, a helpful answer (chosen) and one of four kinds of bad answer
(rejected): an answer to a different question, a refusal, a dismissive reply, or (for
capitals) a confident wrong fact, which only a model that knows geography can catch. Train and
eval use disjoint questions, so held-out accuracy measures generalisation, not memory.

    python -m rewardlab.data.demo OUT_DIR   # writes train.jsonl, eval.jsonl, examples.jsonl
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

CAPITALS = [
    ("France", "Paris"), ("Spain", "Madrid"), ("Italy", "Rome"), ("Germany", "Berlin"), ("Japan", "Tokyo"),
    ("Canada", "Ottawa"), ("Australia", "Canberra"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Peru", "Lima"),
    ("Norway", "Oslo"), ("Sweden", "Stockholm"), ("Finland", "Helsinki"), ("Poland", "Warsaw"), ("Greece", "Athens"),
    ("Portugal", "Lisbon"), ("Ireland", "Dublin"), ("Austria", "Vienna"), ("Hungary", "Budapest"),
    ("Argentina", "Buenos Aires"), ("Chile", "Santiago"), ("Mexico", "Mexico City"), ("Thailand", "Bangkok"),
    ("Vietnam", "Hanoi"), ("India", "New Delhi"), ("China", "Beijing"), ("Russia", "Moscow"), ("Turkey", "Ankara"),
    ("Morocco", "Rabat"), ("Ghana", "Accra"), ("Cuba", "Havana"), ("Denmark", "Copenhagen"),
]
TOPICS = [
    ("bake bread", "Mix flour, water, yeast and salt, knead the dough, let it rise for an hour, shape it and "
                   "bake it at about 220 C for 30 minutes."),
    ("boil an egg", "Put the egg in boiling water for about 7 minutes, then cool it in cold water before peeling."),
    ("change a flat tyre", "Loosen the nuts, jack up the car, swap the flat for the spare, tighten the nuts in a "
                           "star pattern and lower the car."),
    ("start running", "Begin with short run-walk intervals three times a week and add a few minutes each week."),
    ("learn a language", "Practise a little every day, learn common words first, and speak with native speakers."),
    ("save money", "Track your spending, set a monthly budget, and move a fixed amount to savings on payday."),
    ("sleep better", "Keep a regular bedtime, avoid screens and caffeine late, and keep the bedroom cool and dark."),
    ("water a cactus", "Water it deeply only when the soil is completely dry, about every two to three weeks."),
    ("write a cover letter", "Address the hiring manager, say why you fit the role with two concrete examples, and "
                             "close with a call to action."),
    ("clean a cast iron pan", "Rinse it with hot water, scrub with salt if needed, dry it fully and rub in a thin "
                              "layer of oil."),
    ("make tea", "Boil water, pour it over the tea, steep for three to five minutes, then remove the leaves."),
    ("tie a tie", "Cross the wide end over the narrow end, loop it up through the neck, down through the knot, "
                  "and tighten."),
    ("plant tomatoes", "Plant them in full sun after the last frost, bury the stem deep, and water at the base."),
    ("study for an exam", "Space your study sessions, test yourself with practice questions, and sleep well "
                          "before the exam."),
    ("fix a squeaky door", "Lift the hinge pin, coat it with a little oil or petroleum jelly, and put it back."),
    ("make a budget spreadsheet", "List your income, list fixed and variable costs in columns, and subtract the "
                                  "total costs from the income."),
]
CAPITAL_Q = ["What is the capital of {c}?", "Which city is the capital of {c}?", "Tell me the capital city of {c}."]
CAPITAL_A = ["The capital of {c} is {k}.", "{k} is the capital city of {c}.", "It is {k}, the capital of {c}."]
HOWTO_Q = ["How do I {t}?", "Can you explain how to {t}?", "What is the best way to {t}?"]
REFUSALS = ["I'm sorry, but I can't help with that request.", "I cannot answer that question.",
            "Sorry, I am not able to help with this."]
DISMISSIVE = ["Look it up yourself.", "Why would I tell you that?", "That is a boring question.",
              "Figure it out on your own."]


def _items() -> list[tuple[str, str, str, str | None]]:
    """(key, question, good answer, wrong-fact answer or None): the key groups phrasings of one question."""
    items = []
    cities = [city for _, city in CAPITALS]
    for country, city in CAPITALS:
        for q in CAPITAL_Q:
            template = random.choice(CAPITAL_A)
            wrong = random.choice([c for c in cities if c != city])
            items.append((country, q.format(c=country), template.format(c=country, k=city),
                          template.format(c=country, k=wrong)))
    for topic, answer in TOPICS:
        for q in HOWTO_Q:
            items.append((topic, q.format(t=topic), answer, None))
    return items


def make_pairs(seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Train and eval pairs over disjoint questions (about 80% / 20% of the keys)."""
    random.seed(seed)
    items = _items()
    keys = sorted({k for k, _, _, _ in items})
    random.shuffle(keys)
    eval_keys = set(keys[: len(keys) // 5])
    splits: dict[str, list[dict]] = {"train": [], "eval": []}
    for key, question, good, wrong in items:
        split = "eval" if key in eval_keys else "train"
        others = [a for k, _, a, _ in items if k != key and (k in eval_keys) == (split == "eval")]
        for flaw in ("off-topic", "refusal", "dismissive") + (("wrong-fact",) if wrong else ()):
            bad = {"off-topic": random.choice(others), "refusal": random.choice(REFUSALS),
                   "dismissive": random.choice(DISMISSIVE), "wrong-fact": wrong}[flaw]
            prompt = f"\n\nHuman: {question}\n\nAssistant:"
            splits[split].append({"prompt": prompt, "chosen": " " + good, "rejected": " " + bad, "subset": flaw})
    for rows in splits.values():
        random.shuffle(rows)
    return splits["train"], splits["eval"]


def write(out_dir: str, seed: int = 0) -> dict[str, str]:
    train, evals = make_pairs(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    examples = [{"prompt": r["prompt"], "completions": [r["chosen"], r["rejected"]]} for r in evals[:5]]
    paths = {}
    for name, rows in (("train", train), ("eval", evals), ("examples", examples)):
        paths[name] = str(out / f"{name}.jsonl")
        with open(paths[name], "w") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
    return paths


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "runs/demo/data"
    for name, path in write(target).items():
        print(f"{name:9s} {path}")
