"""The errors a user can fix. The CLI catches :class:`RewardlabError` and prints its message,
which is always one line (file, row and what is wrong, where there is a file)."""

from __future__ import annotations


class RewardlabError(ValueError):
    """Base of every user-facing error."""


class ConfigError(RewardlabError):
    """A configuration problem: an unknown key, a bad value, settings that cannot work together."""


class DataError(RewardlabError):
    """Bad input data; the message names the file, the row and the problem."""


class ModelError(RewardlabError):
    """A model that cannot be found, loaded or used."""


class JudgeError(RewardlabError):
    """A judge that cannot run: a bad template, a server that refuses every request."""
