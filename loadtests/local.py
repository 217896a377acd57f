"""Run Locust against a fresh local server with its demo, and exit with Locust's exit code.

    .venv/bin/python -m loadtests.local -u 50 -r 25 -t 60s [any other locust option]

The server is ``qatysu serve --demo`` on a free port, with a new data directory (its SQLite
database and development secrets) under a temporary directory, and loopback as its trusted
proxy so that each simulated citizen's ``X-Forwarded-For`` counts as that citizen's address.
Locust runs headless from the repository root with the arguments given, and finds the server's
development secret through ``QATYSU_SERVER__DATA_DIR``. Reports go where the arguments (or
``[tool.locust]`` in pyproject.toml) say: ``bench-results/`` by default.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from loadtests.servers import REPO_ROOT, VENV_BIN, ManagedServer, free_port

LOOPBACK_PROXIES = '["127.0.0.1/32", "::1/128"]'


def demo_server(data_dir: Path) -> ManagedServer:
    port = free_port()
    # The server makes its own development token key, which Locust reads from the data
    # directory; a key set for another server would not be the one Locust signs with.
    env = {key: value for key, value in os.environ.items() if key != "QATYSU_JWT_SECRET"}
    env.update(
        {
            "QATYSU_SERVER__DATA_DIR": str(data_dir),
            "QATYSU_SERVER__TRUSTED_PROXIES": LOOPBACK_PROXIES,
            "QATYSU_SERVER__ACCESS_LOG": "false",
        }
    )
    return ManagedServer(
        command=[str(VENV_BIN / "qatysu"), "serve", "--demo", "--port", str(port)],
        env=env,
        ready_path="/readyz",
        port=port,
        log_path=data_dir / "server.log",
    )


def run_locust(url: str, data_dir: Path, arguments: Sequence[str]) -> int:
    env = {key: value for key, value in os.environ.items() if key != "QATYSU_JWT_SECRET"}
    env["QATYSU_SERVER__DATA_DIR"] = str(data_dir)
    command = [str(VENV_BIN / "locust"), "--headless", "--host", url, *arguments]
    print("$", " ".join(command), flush=True)
    return subprocess.run(command, cwd=REPO_ROOT, env=env, check=False).returncode


def main(arguments: Sequence[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="qatysu-locust-") as workdir:
        data_dir = Path(workdir) / "data"
        data_dir.mkdir()
        with demo_server(data_dir) as server:
            print(f"server: {server.printable} (data in {data_dir})", flush=True)
            return run_locust(server.url, data_dir, arguments)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
