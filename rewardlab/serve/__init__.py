"""Serving: the HTTP reward server (app.py), its Python API (api.py: ``serve``, ``create_app``),
request batching (batcher.py), metrics and client."""

from .api import create_app, serve
from .app import split_query
from .client import RewardClient, RewardClientError

__all__ = ["RewardClient", "RewardClientError", "create_app", "serve", "split_query"]
