"""Where a Locust run finds its token secret, and how citizens stay distinct across workers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtests.stage import CITIZEN_BLOCK, CITIZEN_BLOCKS, NoSecret, Stage, find_secret
from plugins.kazakhstan.iin import iin_problem, synthetic_iin


def stage(first_block: int = 0) -> Stage:
    return Stage(
        petition_id="p", consultation_id="c", item_id="i", agency="a", first_block=first_block
    )


def test_the_environment_secret_comes_first(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "dev-secrets.json").write_text(json.dumps({"jwt_secret": "dev"}))
    assert find_secret({"QATYSU_JWT_SECRET": "from-env"}, tmp_path) == "from-env"


def test_without_it_the_local_servers_development_secret_is_read(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "dev-secrets.json").write_text(json.dumps({"jwt_secret": "dev"}))
    assert find_secret({}, tmp_path) == "dev"


def test_the_servers_data_dir_setting_is_followed(tmp_path: Path) -> None:
    data_dir = tmp_path / "elsewhere"
    data_dir.mkdir()
    (data_dir / "dev-secrets.json").write_text(json.dumps({"jwt_secret": "there"}))
    assert find_secret({"QATYSU_SERVER__DATA_DIR": str(data_dir)}, Path("/")) == "there"


@pytest.mark.parametrize("content", [None, "not json", "[]", '{"iin_hash_secret": "x"}'])
def test_no_usable_secret_is_one_clear_error(tmp_path: Path, content: str | None) -> None:
    if content is not None:
        (tmp_path / "var").mkdir()
        (tmp_path / "var" / "dev-secrets.json").write_text(content)
    with pytest.raises(NoSecret) as caught:
        find_secret({}, tmp_path)
    assert str(caught.value) == (
        "no token secret: set QATYSU_JWT_SECRET to the server's, or run from the directory of "
        f"a local development server (its {tmp_path / 'var' / 'dev-secrets.json'} was not "
        "found or is not readable)"
    )


def test_citizens_of_different_workers_never_share_an_iin() -> None:
    run = stage(first_block=CITIZEN_BLOCKS - 1)  # the last block: worker 1 wraps to block 0
    numbers = {
        run.citizen_number(worker, serial) for worker in range(4) for serial in range(1, 2001)
    }
    assert len(numbers) == 4 * 2000
    iins = {synthetic_iin(n) for n in numbers}
    assert len(iins) == len(numbers)
    assert [iin for iin in iins if iin_problem(iin) is not None] == []
    assert max(numbers) < CITIZEN_BLOCKS * CITIZEN_BLOCK


def test_the_stage_travels_to_workers_as_plain_data() -> None:
    run = stage(first_block=7)
    assert Stage.from_message(json.loads(json.dumps(run.as_message()))) == run
