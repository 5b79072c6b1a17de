"""A budget that teaches the seed nothing makes the whole run a random walk: astevo says so at once, with the
flags to raise, and goes on only with --force; the noise line never claims a margin of zero."""

from __future__ import annotations

from pathlib import Path

import pytest

from astevo.evolution.noise import Noise, learns_nothing
from astevo.views.run_view import noise_line
from tests.cli_process import astevo, small_validation


@pytest.mark.parametrize(
    ("accuracies", "classes", "said"),
    [
        ((0.10, 0.10, 0.10), 10, "within 3 points of chance (10.00% for 10 classes)"),
        ((0.11, 0.125, 0.12), 10, "within 3 points of chance"),
        ((0.35, 0.36, 0.34), 3, "(33.33% for 3 classes)"),
        ((0.70, 0.70, 0.70), 10, "the same every time: the budget cannot tell models apart"),
        ((0.73, 0.74, 0.72), 10, None),
        ((0.14, 0.15, 0.16), 10, None),
        ((0.10,), 10, None),  # one training says nothing yet
    ],
)
def test_learning_nothing_is_chance_level_or_no_spread_at_all(accuracies, classes: int, said: str | None) -> None:
    problem = learns_nothing(Noise(accuracies), classes)
    assert (problem is None) == (said is None)
    assert said is None or said in str(problem)


def test_the_noise_line_never_claims_a_margin_of_zero() -> None:
    line = noise_line(Noise((0.10, 0.10, 0.10)))
    assert "0.00 points" not in line and "cannot tell any two models apart" in line


@pytest.mark.slow
@pytest.mark.needs_data
def test_a_run_whose_seed_learns_nothing_stops_at_once_and_goes_on_with_force(tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = astevo(
        "evolve", "--run", str(run), "--variation", "random", "--population", "2", "--generations", "1",
        "--limit-train", "20", "--epochs", "1", "--workers", "1", *small_validation(tmp_path), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the seed learns nothing at this budget") and "(10.00% for 10 classes)" in last
    assert "raise --limit-train (now 20 images) or --epochs (now 1)" in last
    assert f"astevo evolve --run {run} --resume --force" in last
    forced = astevo("evolve", "--run", str(run), "--resume", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr[-2000:]
    assert "the same every time" in forced.stdout or "within noise" in forced.stdout
