"""Serving: the HTTP reward server (app.py), its request batching (batcher.py), metrics and client."""

from .app import create_app, serve, split_query
from .client import RewardClient, RewardClientError

__all__ = ["RewardClient", "RewardClientError", "create_app", "serve", "split_query"]
