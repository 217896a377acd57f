"""The CPU-per-read comparison starts each tree's own server, sharing Redis under its own prefix."""

from __future__ import annotations

from pathlib import Path

from loadtests.hotread_cpu import tree_server


def test_each_tree_runs_its_own_server_behind_a_trusted_proxy_with_its_own_prefix(
    tmp_path: Path,
) -> None:
    server = tree_server(Path("/trees/main"), tmp_path, "r1-main", "redis://127.0.0.1:6391/0")
    assert "/trees/main/.venv/bin/qatysu" in server.command
    assert server.command[server.command.index("--admission") + 1] == "on"
    assert server.env["QATYSU_SERVER__TRUSTED_PROXIES"] == '["127.0.0.1/32"]'
    assert (server.env["QATYSU_REDIS__URL"], server.env["QATYSU_REDIS__KEY_PREFIX"]) == (
        "redis://127.0.0.1:6391/0",
        "r1-main:",
    )
