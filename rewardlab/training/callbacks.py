"""Callbacks: code of yours that the training loop calls at its fixed points.

    class StopAtAccuracy(rewardlab.Callback):
        def on_step(self, run, logs):
            if logs.get("accuracy", 0) > 0.9:
                run.stop()  # a checkpoint, then the final model and its evaluation, as at the end

Every hook gets the :class:`rewardlab.training.loop.Run` (``run.step``, ``run.total``,
``run.cfg``, ``run.hf_model``, ...). Under ``accelerate launch`` hooks run on every process with
the same numbers, so a decision taken from them is the same everywhere. Trackers
(``report_to``) and metrics.jsonl keep working beside them.
"""

from __future__ import annotations


class Callback:
    """Override the hooks you need; the others do nothing."""

    def on_train_begin(self, run) -> None:
        """Before the first step (after a resume: before the next one)."""

    def on_step(self, run, logs: dict) -> None:
        """After every optimizer step. ``logs``: step, epoch, loss, the kind's statistics
        (accuracy...), lr, grad_norm, examples_per_s (the same numbers on every process)."""

    def on_evaluate(self, run, metrics: dict) -> None:
        """After each evaluation on the held-out rows (main process): the kind's metrics."""

    def on_save(self, run, folder: str) -> None:
        """After a checkpoint or the final model was written (main process)."""

    def on_train_end(self, run, result: dict) -> None:
        """After the final model and its evaluation: what ``train`` returns as metrics."""
