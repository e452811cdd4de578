"""LLM-as-a-judge (generative reward models): prompts.py (MT-Bench templates, verdict parsing),
backends.py (a local model or an OpenAI-compatible server), data.py (rows in, preference rows
out), run.py (position-bias control, cache, agreement, and the :class:`Judge` API)."""

from .run import Judge

__all__ = ["Judge"]
