"""What Locust finds in the scenarios and the shapes, and the shapes' user counts over time.

Each check runs in a subprocess: importing locust monkey-patches the standard library (gevent).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

USERS = """
from locust.contrib.fasthttp import FastHttpUser
from locust.util.load_locustfile import load_locustfile
users, shapes = load_locustfile("loadtests/locustfile.py")
print(sorted((name, cls.weight) for name, cls in users.items()))
people = [cls for name, cls in users.items() if name != "Watcher"]
print(all(issubclass(cls, FastHttpUser) for cls in people), shapes)
"""

SHAPES = """
import types
from locust.util.load_locustfile import load_locustfile
_, shapes = load_locustfile("loadtests/shapes.py")
for shape in shapes:
    options = types.SimpleNamespace(num_users=10, spawn_rate=5.0, run_time=100)
    shape.runner = types.SimpleNamespace(environment=types.SimpleNamespace(parsed_options=options))
    ticks = []
    for second in (0, 20, 30, 60, 80, 90, 99.9, 100):
        shape.get_run_time = lambda second=second: second
        ticks.append(shape.tick())
    print(type(shape).__name__, ticks)
"""


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_locustfile_has_four_weighted_fast_http_users_a_watcher_and_no_shape() -> None:
    completed = run_python(USERS)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == [
        "[('AgencyOfficial', 1), ('BrowsingCitizen', 6), ('EngagedCitizen', 3), ('Moderator', 1),"
        " ('Watcher', 1)]",
        "True []",
    ]


def test_each_shape_scales_with_users_and_run_time() -> None:
    completed = run_python(SHAPES, QATYSU_SHAPE="")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == [
        "Steady [(10, 5.0), (10, 5.0), (10, 5.0), (10, 5.0), (10, 5.0), (10, 5.0), (10, 5.0), "
        "None]",
        "FlashCrowd [(10, 5.0), (10, 5.0), (100, 18.0), (100, 18.0), (10, 18.0), (10, 18.0), "
        "(10, 18.0), None]",
        "DeadlineRush [(10, 1.0), (20, 1.0), (25, 1.0), (40, 1.0), (2, 50.0), (2, 50.0), "
        "(2, 50.0), None]",
        "Soak [(10, 5.0), (10, 5.0), (10, 5.0), (10, 5.0), (10, 5.0), (10, 5.0), (10, 5.0), None]",
    ]


def test_the_shape_variable_leaves_locust_only_the_shape_it_names() -> None:
    completed = run_python(SHAPES, QATYSU_SHAPE="FlashCrowd")
    assert completed.returncode == 0, completed.stderr
    assert [line.split()[0] for line in completed.stdout.splitlines()] == ["FlashCrowd"]


def test_an_unknown_shape_name_stops_with_the_choices() -> None:
    completed = run_python(SHAPES, QATYSU_SHAPE="Tsunami")
    assert completed.returncode == 1
    assert completed.stderr.strip().splitlines()[-1] == (
        "QATYSU_SHAPE='Tsunami' is not a shape; choose one of "
        "('Steady', 'FlashCrowd', 'DeadlineRush', 'Soak')"
    )
