"""``rewardlab.serve`` and ``rewardlab.create_app``: the reward server (app.py) from Python, for a
model folder or a model already loaded, with the same settings and score-time options as
``rewardlab serve``.

    rewardlab.serve("runs/rm", port=5000, aggregate="prod")   # blocks: uvicorn until Ctrl-C / SIGTERM
    app = rewardlab.create_app(rm)                            # a FastAPI app to mount or test
"""

from __future__ import annotations

import dataclasses
import os

from ..config import ScoreOptions, ServeConfig, score_options
from ..data.text import chat_rendering
from ..errors import ConfigError
from .app import build_app

_SCORE_FIELDS = {f.name for f in dataclasses.fields(ScoreOptions)}


def serve_config(model, cfg: ServeConfig | None = None, options: ScoreOptions | dict | None = None,
                 **settings) -> ServeConfig:
    """A :class:`ServeConfig` from ``cfg`` (or the defaults), ``settings`` (its fields: host, port,
    batch_size, normalize, api_key_env...) and score-time ``options`` (or their names among
    ``settings``: ``aggregate="prod"``). An unknown name is an error naming it."""
    cfg = cfg or ServeConfig()
    fields = {f.name for f in dataclasses.fields(ServeConfig)} - {"scoring"}
    scoring = {k: settings.pop(k) for k in list(settings) if k in _SCORE_FIELDS}
    unknown = sorted(set(settings) - fields)
    if unknown:
        raise ConfigError(f"serve: unknown setting {unknown[0]!r} (known: {', '.join(sorted(fields | _SCORE_FIELDS))})")
    merged = score_options({**cfg.scoring.given(), **score_options(options).given(), **scoring})
    name = model if isinstance(model, str) else (cfg.model or getattr(model, "name", ""))
    return dataclasses.replace(cfg, **settings, model=name, scoring=merged)


def loaded(model, cfg: ServeConfig):
    """A folder loaded as ``rewardlab serve`` loads it, or a loaded model read with ``cfg``'s options."""
    if isinstance(model, str):
        import torch

        from ..inference import RewardModel

        return RewardModel.from_pretrained(model, max_length=cfg.max_length, device=cfg.device or None,
                                           dtype=torch.bfloat16 if cfg.bf16 else None, options=cfg.scoring)
    return model.with_options(cfg.scoring) if cfg.scoring.given() else model


def port_is_free(host: str, port: int) -> None:
    """A one-line error when ``host:port`` cannot be listened on (another server on it)."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a closing socket is no obstacle
        try:
            s.bind((host, port))
        except OSError as e:
            raise ConfigError(f"--port {port}: cannot listen on {host}:{port}: {e.strerror or e} (another server "
                              "there? choose another --port)") from None


def api_key_of(cfg: ServeConfig) -> str | None:
    if not cfg.api_key_env:
        return None
    key = os.environ.get(cfg.api_key_env)
    if not key:
        raise ConfigError(f"--api-key-env {cfg.api_key_env}: that environment variable is empty or unset")
    return key


def create_app(model, cfg: ServeConfig | None = None, api_key: str | None = None, *,
               options: ScoreOptions | dict | None = None, **settings):
    """The FastAPI app serving ``model`` (a folder, or a loaded :class:`rewardlab.RewardModel` or
    ensemble): POST /score, POST /get_reward, GET /health, GET /metrics. ``cfg`` / ``settings``:
    :class:`rewardlab.config.ServeConfig`'s fields; ``options``: score-time options; ``api_key``:
    the bearer token to require (default: read from ``api_key_env`` when set)."""
    cfg = serve_config(model, cfg, options, **settings)
    return build_app(loaded(model, cfg), cfg, api_key if api_key is not None else api_key_of(cfg))


def serve(model, cfg: ServeConfig | None = None, *, options: ScoreOptions | dict | None = None, **settings) -> None:
    """Serve ``model`` over HTTP until stopped (``rewardlab serve``): :func:`create_app` run by uvicorn
    on ``host``:``port`` (127.0.0.1:5000 unless given)."""
    import uvicorn

    cfg = serve_config(model, cfg, options, **settings)
    api_key = api_key_of(cfg)
    port_is_free(cfg.host, cfg.port)  # before loading a model and saying "serving"
    rm = loaded(model, cfg)
    for m in getattr(rm, "members", [rm]):
        if m.capped:
            print(f"note: {m.capped}", flush=True)
    app = build_app(rm, cfg, api_key)
    print(f"serving {cfg.model} ({rm.kind}) on http://{cfg.host}:{cfg.port} (POST /score, POST /get_reward, "
          f"GET /health, GET /metrics){'; bearer token required' if api_key else ''}; "
          f"{chat_rendering(rm.tokenizer)}", flush=True)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning")
