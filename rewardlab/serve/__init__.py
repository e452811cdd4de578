"""Serving: the HTTP reward server (app.py)."""

from .app import create_app, serve, split_query

__all__ = ["create_app", "serve", "split_query"]
