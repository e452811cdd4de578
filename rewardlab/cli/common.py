"""What every command shares: required flags and the weights' dtype."""

from __future__ import annotations

from ..errors import ConfigError


def dtype(bf16: bool):
    import torch

    return torch.bfloat16 if bf16 else None


def need(value: str, flag: str) -> None:
    if not value:
        raise ConfigError(f"missing {flag}")


def models_of(value) -> list[str]:
    """A repeatable --model as a list, blanks left out."""
    return [m for m in (value if isinstance(value, list) else [value]) if m]
