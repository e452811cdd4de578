"""The server's Prometheus metrics (``GET /metrics``), through prometheus-client when installed.

Requests and errors by endpoint and status code, batch sizes (requests and texts), model time
and tokens per batch, tokens sent and tokens processed (their ratio is what prefix sharing saves), the wait
in the queue before a batch starts, request latency, the prefix cache (memory, entries, hits,
tokens reused), and the drift of the served rewards from the training distribution (drift.py).
"""

from __future__ import annotations


class Metrics:
    def __init__(self):
        try:
            import prometheus_client as prom
        except ImportError:  # the server works without it; /metrics says how to get them
            self.registry = None
            return
        self.prom = prom
        self.registry = r = prom.CollectorRegistry()
        self.requests = prom.Counter("rewardlab_requests_total", "Requests answered", ["endpoint"], registry=r)
        self.errors = prom.Counter("rewardlab_errors_total", "Requests refused", ["endpoint", "code"], registry=r)
        self.latency = prom.Histogram("rewardlab_request_seconds", "Request latency", ["endpoint"], registry=r,
                                      buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60))
        self.wait = prom.Histogram("rewardlab_queue_wait_seconds", "Wait before a request's batch starts",
                                   registry=r, buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5))
        self.batch_requests = prom.Histogram("rewardlab_batch_requests", "Requests per batch", registry=r,
                                             buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
        self.batch_texts = prom.Histogram("rewardlab_batch_texts", "Texts per batch", registry=r,
                                          buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 1024))
        self.batch_tokens = prom.Histogram("rewardlab_batch_tokens", "Tokens per batch", registry=r,
                                           buckets=(64, 256, 1024, 4096, 16384, 65536))
        self.busy = prom.Histogram("rewardlab_batch_seconds", "Model time per batch (their sum over the "
                                   "wall time is how busy the model is)", registry=r,
                                   buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
        self.sent = prom.Counter("rewardlab_tokens_sent_total", "Tokens of the texts scored", registry=r)
        self.processed = prom.Counter("rewardlab_tokens_processed_total",
                                      "Tokens the model processed (shared prefixes once)", registry=r)
        self.cache_bytes = prom.Gauge("rewardlab_prefix_cache_bytes", "Memory held by the prefix cache", registry=r)
        self.cache_entries = prom.Gauge("rewardlab_prefix_cache_entries", "Prefixes in the prefix cache", registry=r)
        self.cache_hits = prom.Counter("rewardlab_prefix_cache_hits_total", "Prompts found in the prefix cache",
                                       registry=r)
        self.cache_reused = prom.Counter("rewardlab_prefix_cache_reused_tokens_total",
                                         "Tokens whose keys and values came from the prefix cache", registry=r)
        self.seen = (0, 0)  # the cache's own counters at the last batch
        labels = ["model"]
        self.drift_mean = prom.Gauge("rewardlab_reward_drift_mean_shift", "Served rewards' mean minus the training "
                                     "mean, in training standard deviations", labels, registry=r)
        self.drift_std = prom.Gauge("rewardlab_reward_drift_std_ratio", "Served rewards' std over the training std",
                                    labels, registry=r)
        self.drift_psi = prom.Gauge("rewardlab_reward_drift_psi", "Population-stability index of the served rewards "
                                    "against the training distribution", labels, registry=r)
        self.drift_n = prom.Gauge("rewardlab_reward_drift_samples", "Served rewards the drift is measured on", labels,
                                  registry=r)

    def cache(self, cache) -> None:
        """The prefix cache's state after a batch (models/prefix_cache.py); nothing without one."""
        if self.registry is None or cache is None:
            return
        self.cache_bytes.set(cache.bytes)
        self.cache_entries.set(len(cache))
        self.cache_hits.inc(max(0, cache.hits - self.seen[0]))  # a replaced cache starts again from 0
        self.cache_reused.inc(max(0, cache.reused_tokens - self.seen[1]))
        self.seen = (cache.hits, cache.reused_tokens)

    def request(self, endpoint: str, seconds: float) -> None:
        if self.registry is not None:
            self.requests.labels(endpoint).inc()
            self.latency.labels(endpoint).observe(seconds)

    def error(self, endpoint: str, code: int) -> None:
        if self.registry is not None:
            self.errors.labels(endpoint, str(code)).inc()

    def batch(self, requests: int, texts: int, sent: int, processed: int, waits: list[float], seconds: float) -> None:
        if self.registry is None:
            return
        self.busy.observe(seconds)
        self.batch_requests.observe(requests)
        self.batch_texts.observe(texts)
        self.batch_tokens.observe(sent)
        self.sent.inc(sent)
        self.processed.inc(processed)
        for w in waits:
            self.wait.observe(w)

    def drift(self, report: dict | None) -> None:
        """The drift of every watched model (serve/drift.py), as gauges."""
        if self.registry is None or report is None:
            return
        for name, r in report["models"].items():
            self.drift_n.labels(name).set(r["n"])
            for gauge, key in ((self.drift_mean, "mean_shift"), (self.drift_std, "std_ratio"), (self.drift_psi, "psi")):
                if r[key] is not None:
                    gauge.labels(name).set(r[key])

    def text(self) -> bytes:
        if self.registry is None:
            return b"# prometheus-client is not installed: pip install 'rewardlab[serve]'\n"
        return self.prom.generate_latest(self.registry)
