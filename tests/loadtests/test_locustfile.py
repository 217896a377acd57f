"""The Locust scenarios load (in a subprocess: importing locust monkey-patches with gevent)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

CHECK = """
import loadtests.locustfile as scenarios
from locust import HttpUser, LoadTestShape
users = [scenarios.CitizenReader, scenarios.Signer, scenarios.Commenter]
assert all(issubclass(user, HttpUser) for user in users)
assert issubclass(scenarios.FlashCrowd, LoadTestShape)
print("ok")
"""


def test_locustfile_imports() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().endswith("ok")
