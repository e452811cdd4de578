"""Kind ``genrm``: a generative verifier (Zhang et al. 2024, "Generative Verifiers: Reward
Modeling as Next-Token Prediction", arXiv 2408.15240).

The model keeps its language-model head. It reads the prompt, the completion and a verification
question (default the paper's "Is the answer correct (Yes/No)?") and is trained with the
next-token cross-entropy of the verdict token after the question: " Yes" for a correct
completion, " No" for a wrong one (a soft label y in [0, 1] weighs the two: -(y log p(Yes) +
(1 - y) log p(No))). Its reward is

    r = p(Yes) / (p(Yes) + p(No))    at the verdict position,

the probability it gives to "correct" among the two verdicts. Rows are the ORM's:
``{"prompt", "completion", "label"}``. Only the positions that are read go through the
language-model head (a full-vocabulary projection at every token would dominate the cost): the
verdict position, and with ``sft_coef`` a correct completion's tokens. The saved folder is a
plain causal language model (``AutoModelForCausalLM``) whose ``config.rewardlab`` holds the
question and the two verdict token ids. Unit: an example. Encoders are refused: they see the
whole text, so they make no next-token prediction to read.

With ``sft_coef`` the paper's joint objective adds sft_coef x the mean next-token cross-entropy
of each correct completion's tokens (the verifier keeps generating correct solutions).

Not built yet (issue 19): chain-of-thought rationales (GenRM-CoT) and the majority vote over
sampled rationales.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ..config import ConfigError, check_choices, option
from ..data.pointwise import Point, encode_points, parse_orm, text_point
from ..eval.pointwise import format_pointwise, orm_metrics
from ..models.heads import HeadOutputs
from . import points

NAME = "genrm"
COMPARES = False  # a text's reward does not depend on the texts scored with it
QUESTION = "\n\nIs the answer correct (Yes/No)?"  # Zhang et al. 2024
VERDICTS = (" Yes", " No")
STATS = ("correct", "examples")
ONE_REWARD_HEAD, FORMATS = points.ONE_REWARD_HEAD, points.FORMATS
forward_module = HeadOutputs
format_eval = format_pointwise
check, units, batch, texts = points.no_check, lambda item, obj: 1, points.batch, points.texts
step_marker = points.no_marker
score_texts, prepare = points.score_texts, points.no_prepare


@dataclass
class Options:
    """Generative verifier: the question the model answers with Yes or No after each completion."""

    genrm_template: str = option("", "genrm: a text file holding the verification question put after each "
                                 "completion (default: Zhang et al.'s '\\n\\nIs the answer correct (Yes/No)?'; "
                                 "trailing newlines are dropped: the verdict follows the question's last character).",
                                 resume=True)
    genrm_question: str = option("", "genrm: the verification question itself, instead of --genrm-template; a "
                                 "trained model keeps its question here, so evaluation asks what training asked.",
                                 resume=True)
    sft_coef: float = option(0.0, "genrm: adds sft_coef x the next-token cross-entropy of each correct completion "
                             "(its mean over the completion's tokens; Zhang et al.'s joint objective).",
                             resume=True, low=0)

    def __post_init__(self):
        check_choices(self)
        if self.genrm_template and self.genrm_question:
            raise ConfigError("give --genrm-template or --genrm-question, not both")

    def question(self) -> str:
        """The question: given, read from the template file (where training runs), or the default."""
        if self.genrm_question:
            return self.genrm_question
        if not self.genrm_template:
            return QUESTION
        try:
            text = Path(self.genrm_template).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"--genrm-template {self.genrm_template}: cannot read it: {e}") from None
        if not text.strip():
            raise ConfigError(f"--genrm-template {self.genrm_template}: the file is empty")
        return text


@dataclass
class Verdict:
    """A training target: the label, the token ids of the two verdicts, and with ``sft_coef``
    the completion's own tokens (predicted from the reads before the verdict's)."""

    label: float
    yes: int
    no: int
    sft: list[int] = field(default_factory=list)


def verdict_ids(tokenizer) -> list[int]:
    """The token ids of " Yes" and " No"; each must be one token of its own."""
    ids = [tokenizer.encode(v, add_special_tokens=False) for v in VERDICTS]
    if any(len(i) != 1 for i in ids) or ids[0] == ids[1]:
        raise ConfigError(f"kind genrm needs ' Yes' and ' No' to be one token each in this tokenizer; got {ids}")
    return [i[0] for i in ids]


def asked(point: Point, question: str) -> Point:
    """The point with the question after its completion, read where the question ends."""
    completion = point.completion + question
    return replace(point, completion=completion, ends=[len(completion)], suffix=len(question))


def head(obj: Options, data_path: str = "") -> dict:
    """The language-model head; the question is fixed as text (saved with the model: evaluation
    and scoring elsewhere need no template file)."""
    question = obj.question()
    return {"head": "lm", "num_labels": 1, "settings": {"genrm_question": question},
            "token_settings": lambda tokenizer: {"verdict_ids": verdict_ids(tokenizer)},
            "fixed": {"genrm_template": "", "genrm_question": question}}


def describe(obj: Options) -> str:
    return "kind genrm (generative verifier: next-token loss on ' Yes' / ' No' after the question)"


def parser(obj: Options):
    question = obj.question()

    def parse(row, tokenizer, where, n, allow_empty=True, chat=False):
        return asked(parse_orm(row, tokenizer, where, n, allow_empty, chat), question)
    return parse


def encode(tokenizer, examples, max_length: int, obj: Options, num_proc: int = 1, cache_dir: str = ""):
    """Items read at the verdict position; with ``sft_coef``, a correct completion's tokens are
    read too (each predicted from the position before it), before the verdict."""
    yes, no = verdict_ids(tokenizer)
    items, counts = points.encoder("steps")(tokenizer, examples, max_length)
    if not obj.sft_coef:
        return [(replace(p, target=Verdict(p.target, yes, no)), enc) for p, enc in items], counts
    # The same texts encoded twice more (so the same points are kept): where the completion's own
    # tokens start, and its last token (before the question).
    ends = [replace(p, ends=[len(p.completion) - p.suffix]) for p, _ in items]
    last = encode_points(tokenizer, ends, max_length, "steps")[0]
    first = encode_points(tokenizer, ends, max_length, "tokens")[0]
    out = []
    for (p, enc), (_, at_end), (_, toks) in zip(items, last, first, strict=True):
        ids, start, end = enc.sequences[0], toks.reads[0][0], at_end.reads[0][0]
        wanted = p.target >= 0.5 and start is not None and end is not None and not p.empty_completions()
        sft = list(range(max(start, 1), end + 1)) if wanted else []
        reads = [[r - 1 for r in sft] + enc.reads[0]]
        out.append((replace(p, target=Verdict(p.target, yes, no, [ids[r] for r in sft])),
                    replace(enc, reads=reads)))
    return out, counts


def _verdict_logits(outputs: torch.Tensor, yes: torch.Tensor, no: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(Yes), log p(No) over the whole vocabulary, per read."""
    logp = torch.log_softmax(outputs.float(), -1)
    rows = torch.arange(len(outputs), device=outputs.device)
    return logp[rows, yes], logp[rows, no]


def loss(outputs: torch.Tensor, items: list, obj: Options) -> tuple[torch.Tensor, dict[str, float]]:
    """-(y log p(Yes) + (1 - y) log p(No)) per example, plus sft_coef x the mean next-token
    cross-entropy of a correct completion's tokens; summed over the items."""
    device = outputs.device
    at, verdict, value = 0, [], outputs.new_zeros((), dtype=torch.float32)
    for p, enc in items:  # each item's reads: its SFT positions, then the verdict
        n = len(enc.reads[0])
        if p.target.sft:
            sft = torch.nn.functional.cross_entropy(outputs[at:at + n - 1].float(),
                                                    torch.tensor(p.target.sft, device=device))
            value = value + obj.sft_coef * sft
        verdict.append(at + n - 1)
        at += n
    outputs = outputs[verdict]
    label = torch.tensor([p.target.label for p, _ in items], device=device)
    yes = torch.tensor([p.target.yes for p, _ in items], device=device)
    no = torch.tensor([p.target.no for p, _ in items], device=device)
    log_yes, log_no = _verdict_logits(outputs, yes, no)
    value = value - (label * log_yes + (1 - label) * log_no).sum()
    right = ((log_yes > log_no) == (label >= 0.5)).sum()
    return value, {"correct": float(right), "examples": float(len(items))}


def summarize(sums: dict[str, float]) -> dict[str, float]:
    return {"accuracy": sums["correct"] / sums["examples"] if sums["examples"] else float("nan")}


def p_yes(outputs: torch.Tensor, ids: list[int]) -> float:
    """p(Yes) / (p(Yes) + p(No)) from the head's outputs at the verdict position (NaN if cut off)."""
    two = outputs[-1, ids].float()
    return float(torch.softmax(two, -1)[0])


def read_mode(per_token: bool) -> str:
    return "steps"


def scored_point(text, settings: dict) -> Point:
    return asked(text_point(text), settings.get("genrm_question", QUESTION))


def readout(outputs: torch.Tensor, settings: dict, per_token: bool = False) -> dict:
    """The reward, and the two verdicts' probabilities over the whole vocabulary (how sure the
    model is that the next token is a verdict at all)."""
    ids = settings["verdict_ids"]
    probs = torch.softmax(outputs[-1].float(), -1)[ids].tolist()
    return {"reward": p_yes(outputs, ids), "p_yes": probs[0], "p_no": probs[1]}


def score(model, tokenizer, examples, max_length: int, batch_size: int = 16, obj: Options | None = None):
    """p(Yes) of each example (its question already asked by the parser), and the counts."""
    ids = verdict_ids(tokenizer)
    outputs, counts = points.score(model, tokenizer, examples, max_length, batch_size, "steps")
    return [p_yes(o, ids) for o in outputs], counts


def metrics(examples, probs: list[float], obj: Options) -> dict:
    answers = [e.answer for e in examples]
    return orm_metrics(probs, [e.target for e in examples], points.groups_of(examples),
                       answers if all(a is not None for a in answers) else None)


def report(path: str, metrics: dict, examples: list, outputs: list, model: str, data: str, obj) -> str:
    from ..eval.report_kinds import orm_sections

    return points.report_page(path, NAME, metrics, orm_sections(examples, outputs), model, data)
