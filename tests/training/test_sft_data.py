"""SFT rows for stage 1: prompt-completion and ``messages`` rows, and the mix with general data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grmjudge.rows import DataError
from grmjudge.training.sft_data import load_prompt_completion, mix_general


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_reads_conversational_standard_and_messages_rows(tmp_path: Path) -> None:
    rows = load_prompt_completion(
        [
            write(
                tmp_path / "a.jsonl",
                [
                    {
                        "prompt": [{"role": "user", "content": "p"}],
                        "completion": [{"role": "assistant", "content": "c"}],
                        "id": "x",
                    },
                    {"prompt": "plain", "completion": "text"},
                    {
                        "messages": [
                            {"role": "system", "content": "s"},
                            {"role": "user", "content": "u"},
                            {"role": "assistant", "content": "a"},
                        ]
                    },
                ],
            )
        ]
    )
    assert rows[1] == {
        "prompt": [{"role": "user", "content": "plain"}],
        "completion": [{"role": "assistant", "content": "text"}],
    }
    assert [len(r["prompt"]) for r in rows] == [1, 1, 2] and rows[2]["completion"][0]["content"] == "a"
    assert set(rows[0]) == {"prompt", "completion"}  # other columns are not passed to the trainer


def test_bad_rows_are_listed(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bad.jsonl",
        [
            {"prompt": "p"},
            {"messages": [{"role": "user", "content": "only a question"}]},
            {"prompt": "p", "completion": [{"role": "user", "content": "not the assistant"}]},
            {"prompt": [], "completion": "c"},
            {"prompt": 3, "completion": "c"},
        ],
    )
    with pytest.raises(DataError) as caught:
        load_prompt_completion([path])
    assert [e.index for e in caught.value.errors] == [0, 1, 2, 3, 4]
    assert "missing column 'completion'" in caught.value.errors[0].message


def test_general_rows_make_up_the_requested_share() -> None:
    rm = [{"id": f"rm{i}"} for i in range(30)]
    general = [{"id": f"g{i}"} for i in range(100)]
    mixed, used = mix_general(rm, general, 0.75, seed=0)
    assert used == 90 and len(mixed) == 120 and sum(r["id"].startswith("g") for r in mixed) == 90
    assert mix_general(rm, general, 0.75, seed=0) == (mixed, used)
    assert mixed[:30] != rm  # shuffled together
    few, used_few = mix_general(rm, general[:10], 0.75, seed=0)
    assert used_few == 10 and len(few) == 40  # all of them when there are too few
    assert mix_general(rm, general, 0.0, seed=0)[1] == 0
