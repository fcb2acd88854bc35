"""Baseline (b) of the benchmark: a bare faust-streaming agent that only decodes the messages.

Run as ``python benchmarks/faust_decode_app.py worker`` with BENCH_BOOTSTRAP, BENCH_TOPIC,
BENCH_APP_ID, BENCH_PORT and BENCH_STATE_DIR in the environment; GET http://127.0.0.1:PORT/count
answers the number of messages decoded.
"""
from __future__ import annotations

import json
import os

import faust

app = faust.App(
    os.environ.get("BENCH_APP_ID", "bench-faust-decode"),
    broker=f"kafka://{os.environ.get('BENCH_BOOTSTRAP', '127.0.0.1:29092')}",
    store="memory://",
    web_port=int(os.environ.get("BENCH_PORT", "6066")),
    web_bind="127.0.0.1",
    web_host="127.0.0.1",
    consumer_auto_offset_reset="earliest",
    topic_replication_factor=1,
    stream_buffer_maxsize=8192,
    datadir=os.environ.get("BENCH_STATE_DIR", "/tmp/bench-faust"),
)
topic = app.topic(os.environ.get("BENCH_TOPIC", "bench-events"), key_type=bytes, value_type=bytes,
                  key_serializer="raw", value_serializer="raw")
decoded = {"n": 0}


@app.agent(topic)
async def decode(stream):
    async for value in stream:
        json.loads(value)
        decoded["n"] += 1


@app.page("/count")
async def count(web, request):
    return web.json({"count": decoded["n"]})


if __name__ == "__main__":
    app.main()
