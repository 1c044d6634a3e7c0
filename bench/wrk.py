"""Simple requests (GET or a fixed POST) with `wrk`, which is never the bottleneck."""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import tempfile
from pathlib import Path

from .results import Sample

# wrk calls done() once at the end; print what we need as one JSON line.
REPORT = """
wrk.method = %(method)s
wrk.body = %(body)s
%(headers)s
%(stop)s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, '
    .. '"errors": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""

STOP = """
local answered = 0
response = function(status, headers, body)
  answered = answered + 1
  if answered >= %(limit)d then wrk.thread:stop() end
end
"""


def lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid Lua string literal here


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise FileNotFoundError("wrk is not installed (Debian: apt-get install -y wrk)")
    return found


def run_wrk(
    url: str,
    seconds: float,
    connections: int,
    *,
    method: str = "GET",
    body: str = "",
    headers: dict[str, str] | None = None,
    max_requests: int | None = None,
) -> Sample:
    """wrk for ``seconds`` (whole seconds), or until ``max_requests`` are answered."""
    header_lines = "\n".join(
        f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in (headers or {}).items()
    )
    script = REPORT % {
        "method": lua_string(method),
        "body": lua_string(body) if body else "nil",
        "headers": header_lines,
        "stop": STOP % {"limit": max_requests} if max_requests else "",
    }
    with tempfile.TemporaryDirectory(prefix="freigabe-bench-wrk-") as folder:
        path = Path(folder) / "report.lua"
        path.write_text(script)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            [
                *(wrk_binary(), "--threads", "1", "--connections", str(connections)),
                *("--duration", f"{max(1, round(seconds))}s", "--timeout", "10s"),
                *("--script", str(path), url),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=seconds + 60,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")
    report = json.loads(line[len("BENCH ") :])
    elapsed = report["duration_us"] / 1e6
    return Sample(
        operations=report["requests"] - report["errors"],
        errors=report["errors"],
        seconds=elapsed,
        p50_ms=report["p50_us"] / 1000,
        p99_ms=report["p99_us"] / 1000,
        client_cpu=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    )
