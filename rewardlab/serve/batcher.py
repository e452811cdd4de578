"""Batching across requests: concurrent requests are queued and scored together.

An RL loop sends one query per request from every rollout at once. Scoring each request alone
leaves the model running tiny batches, one after another; here a batch takes every queued
request up to a token budget, waiting at most ``max_wait_s`` after its first request for more
to arrive, and runs it in one worker thread, so the event loop (``/health``, new requests)
stays responsive while the model works. Each request gets exactly its own results, and a
batch's failure fails only the requests in it.
"""

from __future__ import annotations

import asyncio
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class Job:
    """One request's texts, their token count (the batch budget counts it), and its answer."""

    texts: list
    tokens: int
    future: asyncio.Future
    arrived: float = field(default_factory=time.perf_counter)


class Batcher:
    """``await batcher.submit(texts, tokens)`` -> one result per text, from ``run_batch(texts)``
    (blocking; called with several requests' texts at once). ``batching=False`` runs every
    request alone, one after another (how OpenRLHF's server behaves; the load benchmark's baseline)."""

    def __init__(self, run_batch: Callable[[list], list], max_tokens: int = 16384, max_wait_s: float = 0.005,
                 batching: bool = True, on_batch: Callable[[list[Job], float], None] | None = None):
        self.run_batch, self.max_tokens, self.max_wait_s = run_batch, max_tokens, max_wait_s
        self.batching, self.on_batch = batching, on_batch
        self.queue: asyncio.Queue[Job] | None = None
        self.carry: Job | None = None  # a request that did not fit the last batch opens the next one
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rewardlab-model")
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.queue = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Finish every queued request, then stop (graceful shutdown)."""
        while self.queue is not None and (not self.queue.empty() or self.carry is not None):
            await asyncio.sleep(0.01)
        if self.task is not None:
            self.task.cancel()
        self.executor.shutdown(wait=True)

    async def submit(self, texts: list, tokens: int) -> list:
        job = Job(texts, tokens, asyncio.get_running_loop().create_future())
        await self.queue.put(job)
        return await job.future

    async def _next_batch(self) -> list[Job]:
        first = self.carry or await self.queue.get()
        self.carry = None
        jobs, budget = [first], first.tokens
        deadline = first.arrived + self.max_wait_s
        while self.batching:
            try:
                job = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self.queue.get(), left)
                except asyncio.TimeoutError:
                    break
            if budget + job.tokens > self.max_tokens:
                self.carry = job
                break
            jobs.append(job)
            budget += job.tokens
        return jobs

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._next_batch()
            jobs = [j for j in jobs if not j.future.done()]  # a client that went away is not scored
            if not jobs:
                continue
            started = time.perf_counter()
            try:
                results: list[Any] = await loop.run_in_executor(self.executor, self.run_batch,
                                                                [t for j in jobs for t in j.texts])
            except Exception as e:  # noqa: BLE001 - the requests of this batch get the error, the server goes on
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(e)
                continue
            if self.on_batch is not None:
                try:
                    self.on_batch(jobs, started)
                except Exception as e:  # noqa: BLE001 - bookkeeping must never stop the answers
                    print(f"rewardlab serve: batch metrics failed: {e!r}", file=sys.stderr)
            at = 0
            for j in jobs:
                if not j.future.done():
                    j.future.set_result(results[at:at + len(j.texts)])
                at += len(j.texts)
