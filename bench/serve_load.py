"""The reward server under RL-loop load: batching across requests and shared prompts, measured.

    python bench/serve_load.py [--prompts 32] [--samples 8] [--clients 64] [--layers 4] [--repeats 3] [--shuffle]
    python bench/serve_load.py --ensemble 3 [...]

GRPO-shaped traffic on loopback: HH-RLHF prompts (../shared/data) with ``--samples`` different
replies each, every reply sent as its own one-query ``/get_reward`` request (whole text, no
prompt field: what OpenRLHF sends), ``--clients`` requests in flight, prompt by prompt (a
prompt's samples are generated together) or with ``--shuffle`` in random order. The model is the
SmolLM2-135M architecture (``--model``: another backbone) cut to ``--layers`` layers (as
bench/train_vs_trl.py), fp32 unless ``--server-args`` says otherwise, on the GPU when there is
one (the servers' default device).

Three runs, each against a fresh ``rewardlab serve`` subprocess, ``--repeats`` times, interleaved:
  rewardlab   batching across requests + prefix sharing (the defaults), concurrent clients;
  (a) serial  the same server with --no-batching --no-prefix-sharing: one request at a time, as
              OpenRLHF's own server behaves; concurrent clients;
  (b) one     the default server, one client sending requests one after another.
Printed (medians over the repeats): requests/s, p50/p99 latency, failures (all runs), the prefix-sharing ratio (tokens processed /
tokens sent, from /metrics), the number of batches and the share of the wall time the model
worked (from /metrics), the largest reward difference from run (a), and the throughput
ratio rewardlab / (a). Bounded: every request has a 180 s timeout, every run a fixed count.

``--ensemble M``: M such models (score heads drawn with seeds 0..M-1, each with reward statistics
mean 0 / std 1 saved, so the ensemble's mean is the plain mean of their rewards), measured two
ways, interleaved as above: one ``rewardlab serve`` of their ensemble folder (``rewardlab
ensemble``), and the M models served by M default servers that each client calls one after the
other for every request (what an RL loop does with separate reward servers), averaging the M
answers itself. Printed: requests/s and latency of both, their ratio, and the largest difference
between the two ways' rewards.

Recorded in bench/results/serve-load-L<layers>.json, or serve-load-ensembleM-L<layers>.json
(bench/harness.py; the real layer count, so ``--layers 0`` on SmolLM2 is L30), with -shuffle and
the server flags added for those variants and the model's name for another ``--model``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import httpx  # noqa: E402
import torch  # noqa: E402

from bench.harness import SHARED_DATA, cut_layers, record  # noqa: E402

DATA = SHARED_DATA / "hh-rlhf-harmless" / "pairs.jsonl.gz"


def make_model(folder: Path, name: str, layers: int, seed: int = 0) -> str:
    """``name`` (an alias or a folder) cut to ``layers`` with a score head drawn from ``seed``."""
    from rewardlab.models.backbone import load_backbone

    model, tok = load_backbone(name)
    cut_layers(model, layers)
    torch.manual_seed(seed)
    torch.nn.init.normal_(model.score.weight, std=0.02)
    model.config.rewardlab = {"max_length": 512, "kind": "preference", "reward_mean": 0.0, "reward_std": 1.0}
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


def grpo_queries(n_prompts: int, samples: int, shuffle: bool = False, seed: int = 0) -> tuple[list[str], list[str]]:
    """n_prompts HH prompts, each with ``samples`` different replies (its own two, then replies
    taken from other dialogues), as whole texts. In GRPO a prompt's samples are generated in one
    call and sent together, so they arrive in prompt order; ``shuffle``: in any order. Also the
    samples of one more prompt, to warm a server up with (not measured, not in the cache)."""
    from rewardlab.data.loader import load_examples

    pairs = load_examples(str(DATA), None, skip_bad=True, allow_empty=False)
    rng = random.Random(seed)
    replies = [c for p in pairs for c in p.completions if 20 < len(c) < 600]
    chosen = [p for p in pairs if 40 < len(p.prompt) < 800][:n_prompts + 1]
    queries = []
    for p in chosen:
        mine = list(dict.fromkeys(c for c in p.completions if c.strip()))
        while len(mine) < samples:
            mine.append(rng.choice(replies))
        queries += [p.prompt + c for c in mine[:samples]]
    queries, warm = queries[:-samples], queries[-samples:]
    if shuffle:
        rng.shuffle(queries)
    return queries, warm


def start(model: str, *flags: str):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "rewardlab", "serve", "--model", model, "--port", str(port),
                             *flags], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


def read_metrics(url: str) -> dict[str, float]:
    return {line.split()[0]: float(line.split()[1]) for line in httpx.get(f"{url}/metrics").text.splitlines()
            if line and not line.startswith("#")}


async def _post_json(reader, writer, host: str, path: str, body: dict) -> tuple[int, dict]:
    """One HTTP/1.1 request on a kept-alive connection, written and parsed by hand: the load
    generator shares the server's two cores, and a full HTTP client costs more CPU per request
    than the server's own HTTP layer, which would slow the faster server most."""
    data = json.dumps(body).encode()
    writer.write(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
    return status, json.loads(await reader.readexactly(length))


def load(url: str | list[str], queries: list[str], clients: int) -> dict:
    """``clients`` concurrent clients (asyncio tasks, one kept-alive connection each), each
    sending the next query as soon as its last one is answered. Several URLs: every query goes
    to each server in turn and its reward is the mean of their answers."""
    urls = [url] if isinstance(url, str) else url
    url = urls[0]
    before = read_metrics(url)
    latencies, rewards, failures = [None] * len(queries), [None] * len(queries), []
    where = [u.split("//")[1].split(":") for u in urls]

    async def run() -> None:
        todo = iter(range(len(queries)))  # shared by the tasks: each takes the next request

        async def client() -> None:
            conns = [await asyncio.open_connection(h, int(port)) for h, port in where]
            try:
                for i in todo:
                    t0 = time.perf_counter()
                    answers = []
                    for k, (h, port) in enumerate(where):
                        for attempt in (0, 1):
                            reader, writer = conns[k]
                            try:
                                status, answer = await asyncio.wait_for(
                                    _post_json(reader, writer, h, "/get_reward", {"query": [queries[i]]}), 180)
                                if status != 200:
                                    raise ValueError(f"HTTP {status}: {answer}")
                                answers.append(answer["rewards"][0])
                                break
                            except (OSError, asyncio.IncompleteReadError) as e:
                                # A kept-alive connection the server closed while idle (uvicorn closes
                                # after 5 s, which a client waiting on another server reaches): again,
                                # once, on a fresh connection, as HTTP clients do.
                                writer.close()
                                conns[k] = await asyncio.open_connection(h, int(port))
                                if attempt:
                                    failures.append(f"{i}: {e!r}")
                            except (asyncio.TimeoutError, KeyError, ValueError) as e:
                                failures.append(f"{i}: {e!r}")
                                writer.close()
                                conns[k] = await asyncio.open_connection(h, int(port))
                                break
                    if len(answers) == len(where):
                        rewards[i] = sum(answers) / len(answers)
                    latencies[i] = time.perf_counter() - t0
            finally:
                for _, writer in conns:
                    writer.close()

        await asyncio.gather(*(client() for _ in range(clients)))

    t0 = time.perf_counter()
    asyncio.run(run())
    wall = time.perf_counter() - t0
    lat = sorted(x for x in latencies if x is not None)
    after = read_metrics(url)
    metrics = {k: v - before.get(k, 0.0) for k, v in after.items()}  # this run only, not the warm-up
    sent = metrics.get("rewardlab_tokens_sent_total", 0.0)
    batches = metrics.get("rewardlab_batch_seconds_count", 0.0)
    return {"requests": len(queries), "clients": clients, "wall_s": wall, "requests_per_s": len(queries) / wall,
            "p50_s": statistics.median(lat), "p99_s": lat[min(len(lat) - 1, int(0.99 * len(lat)))],
            "failures": len(failures), "first_failures": failures[:3],
            "prefix_ratio": metrics.get("rewardlab_tokens_processed_total", 0.0) / sent if sent else None,
            "batches": int(batches), "model_busy": metrics.get("rewardlab_batch_seconds_sum", 0.0) / wall,
            "rewards": rewards}


RUNS = (("rewardlab", ()), ("(a) serial server", ("--no-batching", "--no-prefix-sharing")), ("(b) one client", ()))


def measure(model: str, queries: list[str], warm: list[str], clients: int, repeats: int,
            extra: tuple[str, ...] = ()) -> dict[str, list[dict]]:
    """Every run ``repeats`` times, interleaved (a slow moment of the machine hits all runs
    alike), each against a fresh server (so no run finds another's prompts in the cache)."""
    runs: dict[str, list[dict]] = {name: [] for name, _ in RUNS}
    for _ in range(repeats):
        for name, flags in RUNS:
            proc, url = start(model, *flags, *extra)
            try:
                load(url, warm, len(warm))  # warm-up: first calls pay one-time costs
                runs[name].append(load(url, queries, 1 if name == "(b) one client" else clients))
            finally:
                proc.terminate()
                proc.wait(timeout=60)
    return runs


def measure_ensemble(members: list[str], ensemble: str, queries: list[str], warm: list[str], clients: int,
                     repeats: int, extra: tuple[str, ...] = ()) -> dict[str, list[dict]]:
    """The ensemble folder on one server against its members on one server each, called one
    after the other per request; interleaved, fresh servers every time."""
    names = ("ensemble, one server", f"{len(members)} servers, called one after the other")
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for _ in range(repeats):
        for name in names:
            procs = []
            try:
                for model in ([ensemble] if name == names[0] else members):
                    procs.append(start(model, *extra))
                urls = [url for _, url in procs]
                load(urls, warm, len(warm))
                runs[name].append(load(urls, queries, clients))
            finally:
                for proc, _ in procs:
                    proc.terminate()
                    proc.wait(timeout=60)
    return runs


def layer_count(folder: str) -> int:
    return json.loads((Path(folder) / "config.json").read_text())["num_hidden_layers"]


def result_name(args, layers: int) -> str:
    """serve-load[-MODEL][-ensembleM]-L<layers>[-shuffle][-SERVER-ARGS]: one file per variant."""
    parts = ["serve-load"] + ([Path(args.model).name] if args.model != "smollm2" else [])
    parts += [f"ensemble{args.ensemble}"] if args.ensemble > 1 else []
    parts += [f"L{layers}"] + (["shuffle"] if args.shuffle else [])
    parts += [flag.lstrip("-") for flag in args.server_args.split()]
    return "-".join(parts)


def ensemble_main(args, work: Path, queries: list[str], warm: list[str]) -> None:
    from rewardlab.inference.combine import make_ensemble

    members = [make_model(work / f"member{i}", args.model, args.layers, seed=i) for i in range(args.ensemble)]
    layers = layer_count(members[0])
    make_ensemble(members, str(work / "ensemble"))
    runs = measure_ensemble(members, str(work / "ensemble"), queries, warm, args.clients, args.repeats,
                            tuple(args.server_args.split()))
    device = f"GPU ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else "CPU"
    print(f"{len(queries)} one-query requests, {args.clients} clients, {args.ensemble} members, each a "
          f"{layers}-layer SmolLM2-architecture model, {device}, loopback; medians of {args.repeats} runs")
    print("| run | requests/s | p50 s | p99 s | failures |")
    print("| --- | --- | --- | --- | --- |")
    summary = {}
    for name, rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs) for k in ("requests_per_s", "p50_s", "p99_s")}
        med["failures"] = sum(r["failures"] for r in rs)
        med["all_requests_per_s"] = [round(r["requests_per_s"], 2) for r in rs]
        print(f"| {name} | {med['requests_per_s']:.2f} | {med['p50_s']:.3f} | {med['p99_s']:.3f} | {med['failures']} |")
        summary[name] = med
    one, many = (summary[n]["requests_per_s"] for n in runs)
    a, b = (runs[n][0]["rewards"] for n in runs)
    diff = max(abs(x - y) for x, y in zip(a, b) if x is not None and y is not None)
    print(f"throughput ratio ensemble server / separate servers (medians): {one / many:.2f}x; largest reward "
          f"difference between the two: {diff:.2e}; every run's requests/s: "
          + "; ".join(f"{k} {v['all_requests_per_s']}" for k, v in summary.items()))
    results = summary | {"ratio": one / many, "max_diff": diff}
    (work / "results_ensemble.json").write_text(json.dumps(results, indent=1))
    rows = [[name, f"{m['requests_per_s']:.2f}", f"{m['p50_s']:.3f}", f"{m['p99_s']:.3f}", str(m["failures"])]
            for name, m in summary.items()]
    rows.append(["ratio ensemble server / separate servers", f"{one / many:.2f}x", "", "", ""])
    record(result_name(args, layers), f"An ensemble of {args.ensemble} on one server vs {args.ensemble} servers "
           f"under RL-loop load: {layers} layers", args, results,
           {"columns": ["run", "requests/s", "p50 s", "p99 s", "failures"], "rows": rows},
           notes=[f"{len(queries)} one-query requests, {args.clients} clients, {device}, loopback; medians of "
                  f"{args.repeats} runs; largest reward difference between the two ways {diff:.2e}"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prompts", type=int, default=32)
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--model", default="smollm2", help="the backbone: an alias or a folder (its architecture)")
    p.add_argument("--layers", type=int, default=4, help="keep the first N decoder layers (0: all)")
    p.add_argument("--repeats", type=int, default=3, help="runs of each kind; medians are printed")
    p.add_argument("--shuffle", action="store_true", help="send the requests in random order, not prompt by prompt")
    p.add_argument("--server-args", default="", help="more flags for every server, e.g. '--bf16' on a GPU (where "
                   "the shared-prompt forward needs bf16)")
    p.add_argument("--work", default="runs/serve-load")
    p.add_argument("--ensemble", type=int, default=0, help="M > 1: an ensemble of M models on one server against "
                   "M servers called one after the other")
    args = p.parse_args()
    if not DATA.exists():
        sys.exit(f"{DATA} not found: set REWARDLAB_SHARED_DATA")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    queries, warm = grpo_queries(args.prompts, args.samples, args.shuffle)
    if args.ensemble > 1:
        return ensemble_main(args, work, queries, warm)
    model = make_model(work / "model", args.model, args.layers)
    layers = layer_count(model)
    runs = measure(model, queries, warm, args.clients, args.repeats, tuple(args.server_args.split()))
    device = f"GPU ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else "CPU"
    base = runs["(a) serial server"][0]["rewards"]
    print(f"{len(queries)} one-query requests ({args.prompts} HH prompts x {args.samples} replies, "
          f"{'random order' if args.shuffle else 'prompt by prompt'}), {layers}-layer SmolLM2-architecture "
          f"model, {device}{' ' + args.server_args if args.server_args else ', fp32'}, loopback; medians of "
          f"{args.repeats} runs each")
    print("| run | clients | requests/s | p50 s | p99 s | failures | tokens processed / sent | batches | model busy "
          "| max reward diff vs (a) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    summary = {}
    for name, rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs) for k in ("requests_per_s", "p50_s", "p99_s", "batches",
                                                                    "model_busy")}
        ratios = [r["prefix_ratio"] for r in rs if r["prefix_ratio"] is not None]
        med["prefix_ratio"] = statistics.median(ratios) if ratios else None
        med["failures"] = sum(r["failures"] for r in rs)
        med["all_requests_per_s"] = [round(r["requests_per_s"], 2) for r in rs]
        diff = max(abs(a - b) for r in rs for a, b in zip(r["rewards"], base) if a is not None and b is not None)
        med["max_reward_diff"] = diff
        ratio = "n/a" if med["prefix_ratio"] is None else f"{med['prefix_ratio']:.3f}"
        print(f"| {name} | {rs[0]['clients']} | {med['requests_per_s']:.1f} | {med['p50_s']:.3f} | "
              f"{med['p99_s']:.3f} | {med['failures']} | {ratio} | {med['batches']:.0f} | {med['model_busy']:.0%} | "
              f"{diff:.2e} |")
        summary[name] = med
    speedup = summary["rewardlab"]["requests_per_s"] / summary["(a) serial server"]["requests_per_s"]
    print(f"throughput ratio rewardlab / (a) serial server (medians): {speedup:.2f}x; every run's requests/s: "
          + "; ".join(f"{k} {v['all_requests_per_s']}" for k, v in summary.items()))
    results = summary | {"ratio": speedup}
    (work / "results.json").write_text(json.dumps(results, indent=1))
    rows = [[name, str(runs[name][0]["clients"]), f"{m['requests_per_s']:.1f}", f"{m['p50_s']:.3f}",
             f"{m['p99_s']:.3f}", str(m["failures"]),
             "n/a" if m["prefix_ratio"] is None else f"{m['prefix_ratio']:.3f}", f"{m['max_reward_diff']:.2e}"]
            for name, m in summary.items()]
    rows.append(["ratio rewardlab / (a) serial server", "", f"{speedup:.2f}x", "", "", "", "", ""])
    record(result_name(args, layers), f"The reward server under RL-loop load: {layers} layers", args, results,
           {"columns": ["run", "clients", "requests/s", "p50 s", "p99 s", "failures", "tokens processed / sent",
                        "max reward diff vs (a)"], "rows": rows},
           notes=[f"{len(queries)} one-query requests ({args.prompts} HH prompts x {args.samples} replies, "
                  f"{'random order' if args.shuffle else 'prompt by prompt'}), {device}"
                  f"{' ' + args.server_args if args.server_args else ', fp32'}, loopback; medians of {args.repeats} "
                  "runs each, every run against a fresh server"],
           headline=f"Serving: {speedup:.2f}x the requests/s of a serial OpenRLHF-style server under GRPO-shaped "
                    f"load ({layers} layers, {device})")


if __name__ == "__main__":
    main()
