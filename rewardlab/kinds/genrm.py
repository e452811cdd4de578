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

GenRM-CoT: a row with a ``rationale`` (a verification written out, e.g. "Let's check: 48 / 2 =
24 ...") is shown as completion + CUE + rationale + question, and the rationale's tokens are
trained too (their mean next-token cross-entropy, added to the verdict's). Scoring with
``genrm_samples`` N > 0 samples N rationales after completion + CUE at ``genrm_temperature``
(seeded from ``genrm_seed`` and the text, so a text scores the same in any batch), each cut where
the model starts the question, and the reward is the mean of their p(Yes) (the paper's majority
vote, as an average of probabilities); the rationales are returned with the reward.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
import zlib
from pathlib import Path

import torch

from ..config import ConfigError, check_choices, option
from ..errors import DataError
from ..data.pointwise import Point, encode_points, parse_orm, text_point
from ..data.text import Text
from ..eval.pointwise import orm_metrics
from ..models.readout import as_json, score_points
from . import points
from .protocol import HeadSpec, ScoreCall

NAME = "genrm"
QUESTION = "\n\nIs the answer correct (Yes/No)?"  # Zhang et al. 2024
CUE = "\n\nLet's verify step by step.\n"  # GenRM-CoT: what precedes a rationale
VERDICTS = (" Yes", " No")
STATS = ("correct", "examples")
units = lambda item, obj: 1  # noqa: E731  (unit: an example)


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
    genrm_samples: int = option(0, "genrm scoring: sample N rationales after each completion (GenRM-CoT) and "
                                "average p(Yes) over them; 0 reads the verdict right after the question.", low=0,
                                score="samples")
    genrm_temperature: float = option(0.7, "genrm scoring: the sampling temperature of the rationales.", above=0,
                                      score="sample_temperature")
    genrm_rationale_tokens: int = option(256, "genrm scoring: most tokens of a sampled rationale.", low=1)
    genrm_seed: int = option(0, "genrm scoring: the seed of the sampled rationales (with the text itself, so a "
                             "text gets the same rationales in any batch).")

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
    """A training target: the label, the token ids of the two verdicts, with ``sft_coef`` the
    completion's own tokens and with a rationale its tokens (each predicted from the read before
    it; reads: SFT tokens, rationale tokens, then the verdict)."""

    label: float
    yes: int
    no: int
    sft: list[int] = field(default_factory=list)
    rationale: list[int] = field(default_factory=list)


def verdict_ids(tokenizer) -> list[int]:
    """The token ids of " Yes" and " No"; each must be one token of its own."""
    ids = [tokenizer.encode(v, add_special_tokens=False) for v in VERDICTS]
    if any(len(i) != 1 for i in ids) or ids[0] == ids[1]:
        raise ConfigError(f"kind genrm needs ' Yes' and ' No' to be one token each in this tokenizer; got {ids}")
    return [i[0] for i in ids]


def asked(point: Point, question: str, rationale: str | None = None) -> Point:
    """The point with (the cue and a rationale, then) the question after its completion, read
    where the question ends."""
    added = (CUE + rationale if rationale is not None else "") + question
    completion = point.completion + added
    return replace(point, completion=completion, ends=[len(completion)], suffix=len(added))


def head(obj: Options, data=None) -> HeadSpec:
    """The language-model head; the question is fixed as text (saved with the model: evaluation
    and scoring elsewhere need no template file)."""
    question = obj.question()
    return HeadSpec("lm", 1, extras={"genrm_question": question},
                    token_extras=lambda tokenizer: {"verdict_ids": verdict_ids(tokenizer)},
                    fixed={"genrm_template": "", "genrm_question": question})


def describe(obj: Options) -> str:
    return "kind genrm (generative verifier: next-token loss on ' Yes' / ' No' after the question)"


def parser(obj: Options):
    question = obj.question()

    def parse(row, tokenizer, where, n, allow_empty=True, chat=False):
        rationale = row.get("rationale")
        if rationale is not None and (not isinstance(rationale, str) or not rationale.strip()):
            raise DataError(f"{where}: 'rationale' must be a non-empty string, got {rationale!r:.40}")
        return asked(parse_orm(row, tokenizer, where, n, allow_empty, chat), question,
                     rationale.strip() if rationale is not None else None)
    return parse


def encode(tokenizer, examples, max_length: int, obj: Options, num_proc: int = 1, cache_dir: str = ""):
    """Items read at the verdict position; with ``sft_coef`` a correct completion's tokens, and a
    rationale's tokens, are read too (each predicted from the position before it)."""
    yes, no = verdict_ids(tokenizer)
    items, counts = points.encoder("steps")(tokenizer, examples, max_length)
    question = len(obj.question())
    spans = []  # per item: the completion's span (SFT) and the rationale's, as character ranges of the completion
    for p, _ in items:
        own = len(p.completion) - p.suffix
        sft = (0, own) if obj.sft_coef and p.target >= 0.5 and not p.empty_completions() else None
        rationale = (own + len(CUE), len(p.completion) - question) if p.suffix > question + len(CUE) else None
        spans.append((sft, rationale))
    wanted = [(k, span) for k, pair in enumerate(spans) for span in pair if span is not None]
    tokens = _token_ranges(tokenizer, [items[k][0] for k, _ in wanted], [span for _, span in wanted], max_length)
    ranges = {}
    for (k, span), found in zip(wanted, tokens):
        ranges[(k, span)] = found
    out = []
    for k, ((p, enc), (sft_span, why_span)) in enumerate(zip(items, spans)):
        ids = enc.sequences[0]
        sft = ranges.get((k, sft_span), []) if sft_span else []
        why = ranges.get((k, why_span), []) if why_span else []
        reads = [[r - 1 for r in sft + why] + enc.reads[0]]
        out.append((replace(p, target=Verdict(p.target, yes, no, [ids[r] for r in sft], [ids[r] for r in why])),
                    replace(enc, reads=reads)))
    return out, counts


def _token_ranges(tokenizer, pts: list[Point], spans: list[tuple[int, int]], max_length: int) -> list[list[int]]:
    """The token indices (in the encoded sequence) of each point's completion characters [a, b);
    the points are encoded as training encodes them, so the indices match its sequences."""
    starts = encode_points(tokenizer, [replace(p, ends=[a + 1]) for p, (a, _) in zip(pts, spans)], max_length, "steps")[0]
    ends = encode_points(tokenizer, [replace(p, ends=[b]) for p, (_, b) in zip(pts, spans)], max_length, "steps")[0]
    out = []
    for (_, s), (_, e) in zip(starts, ends):
        first, last = s.reads[0][0], e.reads[0][0]
        out.append([] if first is None or last is None else list(range(max(first, 1), last + 1)))
    return out


def _verdict_logits(outputs: torch.Tensor, yes: torch.Tensor, no: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(Yes), log p(No) over the whole vocabulary, per read."""
    logp = torch.log_softmax(outputs.float(), -1)
    rows = torch.arange(len(outputs), device=outputs.device)
    return logp[rows, yes], logp[rows, no]


def loss(outputs: torch.Tensor, items: list, obj: Options) -> tuple[torch.Tensor, dict[str, float]]:
    """-(y log p(Yes) + (1 - y) log p(No)) per example, plus sft_coef x the mean next-token
    cross-entropy of a correct completion's tokens, plus the mean next-token cross-entropy of a
    rationale's tokens; summed over the items."""
    device = outputs.device
    at, verdict, value = 0, [], outputs.new_zeros((), dtype=torch.float32)
    for p, enc in items:  # each item's reads: its SFT positions, its rationale's, then the verdict
        n, k = len(enc.reads[0]), len(p.target.sft)
        if p.target.sft:
            sft = torch.nn.functional.cross_entropy(outputs[at:at + k].float(),
                                                    torch.tensor(p.target.sft, device=device))
            value = value + obj.sft_coef * sft
        if p.target.rationale:
            value = value + torch.nn.functional.cross_entropy(outputs[at + k:at + n - 1].float(),
                                                              torch.tensor(p.target.rationale, device=device))
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


def texts(point: Point) -> list[Text]:
    """The example's own completion: the question is asked again at scoring, and a row's own
    rationale (training data, written knowing the label) is not shown."""
    return [Text(point.prompt, point.completion[:len(point.completion) - point.suffix], point.templated)]


def scored_point(text, call: ScoreCall) -> Point:
    return asked(text_point(text), call.options.question())


def readout(outputs: torch.Tensor, settings, call: ScoreCall) -> dict:
    """The reward, and the two verdicts' probabilities over the whole vocabulary (how sure the
    model is that the next token is a verdict at all)."""
    ids = settings.extras["verdict_ids"]
    probs = torch.softmax(outputs[-1].float(), -1)[ids].tolist()
    return {"reward": p_yes(outputs, ids), "p_yes": probs[0], "p_no": probs[1]}


_one_at_a_time = points.score_with(read_mode, scored_point, readout)


def score_texts(rm, texts: list, call: ScoreCall):
    """Each text alone; with ``genrm_samples`` its sampled rationales' mean p(Yes), and the rationales."""
    if not call.options.genrm_samples:
        return _one_at_a_time(rm, texts, call)
    found, counts = sampled_verdicts(rm.model, rm.tokenizer, [scored_point(t, call) for t in texts],
                                     rm.max_length, call.batch_size, call.options)
    return [as_json(f) for f in found], counts


def rationales(model, tokenizer, point: Point, obj: Options, max_length: int) -> list[str]:
    """``genrm_samples`` rationales sampled after the point's completion and the cue, each cut
    where the model starts the question (or at the end of its text), seeded by ``genrm_seed``
    and the text: the same text gets the same rationales in any batch and order."""
    from ..data.encode import encode_texts
    from ..data.text import Text
    from ..models.backbone import hf_model

    inner = hf_model(model)
    own = point.completion[:len(point.completion) - point.suffix]
    ids, head = encode_texts(tokenizer, [Text(point.prompt, own + CUE, point.templated)])[0][:2]
    eos = tokenizer.eos_token_id
    if ids and ids[-1] == eos:  # the text goes on: no end-of-text token before the rationale
        ids = ids[:-1]
    room = max(1, max_length - obj.genrm_rationale_tokens - 32)  # and room for the rationale and the question
    if len(ids) > room:  # cut from the left after the special tokens at the head, as training truncates
        ids = ids[:head] + ids[len(ids) - room + head:]
    device = next(inner.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
        # seeded by the text: the same rationales in any batch; the caller's random state is left as it was
        torch.manual_seed(obj.genrm_seed + zlib.crc32((point.prompt + "\0" + own).encode("utf-8")))
        new = inner.generate(torch.tensor([ids], device=device), attention_mask=torch.ones(1, len(ids), dtype=torch.long,
                                                                                             device=device),
                             do_sample=True, temperature=obj.genrm_temperature, top_k=0, top_p=1.0,
                             max_new_tokens=obj.genrm_rationale_tokens, num_return_sequences=obj.genrm_samples,
                             pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos,
                             eos_token_id=eos)[:, len(ids):]
    question = obj.question().strip()
    out = []
    for text in tokenizer.batch_decode(new, skip_special_tokens=True):
        cut = text.find(question) if question else -1
        out.append((text[:cut] if cut >= 0 else text).strip())
    return out


def sampled_verdicts(model, tokenizer, pts: list[Point], max_length: int, batch_size: int, obj: Options):
    """Per point: the mean p(Yes) over its sampled rationales (``reward``), each sample's p(Yes)
    and its rationale; the counts of the rationale-conditioned texts."""
    ids, question = verdict_ids(tokenizer), obj.question()
    drawn = [rationales(model, tokenizer, p, obj, max_length) for p in pts]
    asked_all = [asked(replace(p, completion=p.completion[:len(p.completion) - p.suffix], suffix=0), question, r)
                 for p, rs in zip(pts, drawn) for r in rs]
    outputs, counts = score_points(model, tokenizer, asked_all, max_length, "steps", batch_size)
    found, at = [], 0
    for rs in drawn:
        each = [p_yes(o, ids) for o in outputs[at:at + len(rs)]]
        at += len(rs)
        known = [x for x in each if x == x]
        found.append({"reward": sum(known) / len(known) if known else float("nan"), "sample_rewards": each,
                      "rationales": rs})
    return found, counts


def metrics(examples, details: list, obj: Options) -> dict:
    probs, answers = points.only(details), [e.answer for e in examples]
    return orm_metrics(probs, [e.target for e in examples], points.groups_of(examples),
                       answers if all(a is not None for a in answers) else None)


def report(path: str, metrics: dict, examples: list, details: list, model: str, data: str, obj) -> str:
    from ..eval.report_kinds import orm_sections

    return points.report_page(path, NAME, metrics, orm_sections(examples, points.only(details)), model, data)
