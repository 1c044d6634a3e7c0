"""`make bench` works: its smoke version (`python -m bench --smoke`: every
scenario for about a second, the embedded backend only, and C), with a soak
of a few seconds, runs, prints its table and writes its JSON. It checks that
the benchmark works, never a speed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..conftest import missing_service

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = {
    ("C", "-"),
    *((name, "embedded") for name in
      ("discovery", "jwks", "client_credentials", "login", "sso", "refresh", "approval")),
}  # fmt: skip


def test_the_benchmark_runs_every_scenario_and_writes_its_json(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        missing_service("wrk is not installed (Debian: apt-get install -y wrk)")
    # Its processes run without coverage: the paths it walks are measured by
    # the flow tests, and tracing a loaded server costs the suite CPU.
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("COVERAGE_PROCESS_", "COV_CORE_"))
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--soak", "--soak-seconds", "3",
         "--out", str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "x C" in done.stdout and "srv CPU ms/op" in done.stdout

    (written,) = tmp_path.glob("*.json")
    report = json.loads(written.read_text())
    assert written.name.startswith(report["commit"] + "-")
    rows = {(row["scenario"], row["backend"]): row for row in report["scenarios"]}
    assert set(rows) == SCENARIOS
    for row in rows.values():
        # Each scenario did what it walks, without an error (a flow that
        # breaks, e.g. a login page that changed, counts as one).
        assert row["operations"] > 0 and row["errors"] == 0, row
        assert row["ratio_to_c"] is not None and row["server_cpu_ms_per_op"] is not None
    # The soak paced the token endpoint and the flows together, without an error.
    soaked = {x["scenario"]: x for x in report["soak"]}
    assert set(soaked) == {"client_credentials", "login", "sso", "refresh"}
    for x in soaked.values():
        assert x["backend"] == "embedded" and x["errors"] == 0 and x["rate"] > 0, x
        assert x["error_kinds"] == {}, x
        assert x["asked_rate"] > 0 and x["memory_drift"] is not None, x
        assert x["memory_step"] is not None, x
        assert x["c_drift"] is not None, x
        assert len(x["memory_mib"]) >= 3 and all(mib > 0 for _, mib in x["memory_mib"]), x
    assert "soak at half capacity" in done.stdout
    # The token endpoint alone and under a login burst, without an error.
    [burst] = report["burst"]
    assert burst["backend"] == "embedded" and burst["browsers"] == 1
    flows = {x["scenario"]: x for x in burst["flows"]}
    assert set(flows) == {"client_credentials", "refresh", "login"}
    for x in flows.values():
        assert x["errors"] == 0 and x["error_kinds"] == {} and x["rate"] > 0, x
    for name in ("client_credentials", "refresh"):
        assert flows[name]["p99_ms_alone"] > 0 and flows[name]["p99_ratio"] is not None
    assert "under a login burst" in done.stdout
    assert {entry["server"] for entry in report["memory"]} == {"C", "Freigabe (embedded)"}
    assert all(entry["pss_mib"] > 0 for entry in report["memory"])
