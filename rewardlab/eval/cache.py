"""Scoring with a progress bar and a resumable cache (``rewardlab eval --scores-cache FILE``).

Benchmark runs on real models take hours: rows are scored in chunks, and each chunk's rewards
are appended to the cache file and flushed, keyed by the model's identity (its folder, the
sizes and times of its weight files, max_length) and the row's texts. An interrupted run loses
at most one chunk; rerun the same command and only the rows not yet scored go through the model.
A half-written last line (a kill in mid-write) is ignored.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from ..data.text import Text


FORMAT = "details-v2"  # what an entry holds: each text's details (earlier caches held a kind's own outputs)


def model_identity(path: str, max_length: int, options: dict | None = None) -> str:
    """What the cached rewards depend on: the folder, its weights' files, max_length; for an
    ensemble folder (ensemble.json) also its spec and every member's identity; ``options``: what
    a command changed about the reading (score-time options); the format of the entries."""
    files = sorted(p for p in Path(path).glob("*.safetensors")) if Path(path).is_dir() else []
    stamp = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    spec = Path(path, "ensemble.json")
    if spec.is_file():
        text = spec.read_text()
        members = [model_identity(str(Path(path, m.get("path", ""))), max_length)
                   for m in json.loads(text).get("members", []) if isinstance(m, dict)]
        stamp.append([text, members])
    return json.dumps([str(Path(path).resolve()), stamp, max_length, *([options] if options else []), FORMAT])


def texts_key(identity: str, texts: list[Text]) -> str:
    h = hashlib.sha256(identity.encode())
    for t in texts:
        for part in (t.prompt, t.completion, str(t.templated), str(t.ends or ""), t.reference):  # step ends too
            h.update(b"\0" + part.encode("utf-8"))
        h.update(b"\1")
    return h.hexdigest()


class ScoresCache:
    """Rewards by key, read from and appended to a JSONL file (``path`` empty: in memory only)."""

    def __init__(self, path: str = ""):
        self.path, self.known = path, {}
        if path and Path(path).exists():
            raw = Path(path).read_bytes().decode("utf-8", errors="replace")
            for line in raw.splitlines():
                try:
                    entry = json.loads(line)
                    self.known[entry["key"]] = entry["rewards"]
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by an interruption
            if raw and not raw.endswith("\n"):
                with open(path, "a", encoding="utf-8") as f:
                    f.write("\n")  # the next entry starts on its own line

    def put(self, entries: dict[str, list[float]]) -> None:
        self.known.update(entries)
        if self.path:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.writelines(json.dumps({"key": k, "rewards": v}) + "\n" for k, v in entries.items())
                f.flush()


def in_chunks(todo: list[int], work, bar=None, first: int = 16, most: int = 256) -> None:
    """Call ``work(indices)`` on ``todo`` in chunks of ``first``, then twice as many each time up
    to ``most``: a slow model moves the progress ``bar`` after a few rows, a fast one soon works
    in large chunks, and the chunks (so the batches, so the rewards' last bits) are the same on
    every run."""
    size, start = max(1, first), 0
    while start < len(todo):
        part = todo[start:start + size]
        start += len(part)
        work(part)
        if bar is not None:
            bar.update(len(part))
        size = min(most, 2 * size)


def score_cached(groups: list[list[Text]], score_chunk, identity: str, cache: ScoresCache, chunk: int = 256,
                 desc: str = "score") -> tuple[list[list[float]], int]:
    """Rewards for every group (``score_chunk(indices) -> rewards per index``), reusing the cache;
    returns them and how many groups came from the cache. Progress shows once scoring has taken
    two seconds, however few the rows (growing chunks, see :func:`in_chunks`)."""
    from tqdm.auto import tqdm

    keys = [texts_key(identity, g) for g in groups]
    todo = [i for i, k in enumerate(keys) if k not in cache.known]
    bar = tqdm(total=len(groups), initial=len(groups) - len(todo), desc=desc, file=sys.stderr, delay=2,
               dynamic_ncols=True)
    in_chunks(todo, lambda part: cache.put({keys[i]: r for i, r in zip(part, score_chunk(part))}), bar, most=chunk)
    bar.close()
    return [cache.known[k] for k in keys], len(groups) - len(todo)
