"""Serving a service's HTTP apps: the write API on its own address, and its read endpoints
(``/healthz``, ``/metrics``) either on the same listener or, when a separate read port is configured,
on a listener of their own (a monitoring interface the writers cannot reach)."""
from __future__ import annotations

import asyncio
from typing import Any


def serve(app: Any, host: str, port: int, read_app: Any = None, read_host: str | None = None,
          read_port: int | None = None, log_level: str = "info") -> None:
    """Run ``app`` on ``host:port`` with uvicorn (blocks). With ``read_port``, ``read_app`` (the read
    endpoints) runs on ``read_host:read_port`` in the same event loop."""
    import uvicorn
    if read_port is None or read_app is None:
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
        return
    servers = [uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False)),
               uvicorn.Server(uvicorn.Config(read_app, host=read_host or host, port=read_port,
                                             log_level="warning", access_log=False, lifespan="off"))]

    async def both() -> None:
        await asyncio.gather(*(server.serve() for server in servers))

    asyncio.run(both())
