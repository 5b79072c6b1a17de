"""The run's noise: the estimate from the seed's trainings and the "within noise" rule, on known values, then
stored trainings read back through a real run database."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from astevo.evolution.noise import Noise, run_noise
from astevo.store.records import Training
from astevo.views.run_view import format_accuracy, format_difference, noise_line
from tests.run_builder import build_run


def test_one_training_says_nothing_about_the_noise() -> None:
    noise = Noise((0.84,))
    assert noise.std is None and noise.margin is None and noise.within(0.001) is None
    assert noise.gained(0.001) and not noise.gained(0.0)  # unmeasured: any positive difference counts
    assert "not measured yet" in noise_line(noise)
    assert format_accuracy(0.84, noise) == "84.00%"


def test_known_values_give_their_sample_std_and_a_margin_of_two_standard_errors_of_a_difference() -> None:
    noise = Noise((0.80, 0.82, 0.84))
    assert noise.std == pytest.approx(0.02)
    assert noise.margin == pytest.approx(2 * math.sqrt(2) * 0.02)  # 5.66 points
    assert noise.within(0.05) and noise.within(-0.05)
    assert not noise.within(0.06) and not noise.within(-0.06)
    assert noise.gained(0.06) and not noise.gained(0.05) and not noise.gained(-0.06)
    assert noise.gained(0.05, (3, 3))  # means of 3 trainings each: 2 standard errors are 3.27 points
    assert format_accuracy(0.8123, noise) == "81.23% ±2.00"
    assert format_difference(5.0, noise) == "+5.00 points, within noise"
    assert format_difference(-6.0, noise) == "-6.00 points, beyond noise"
    assert "std 2.00 points" in noise_line(noise) and "less than 5.66 points" in noise_line(noise)


@given(st.lists(st.floats(0.0, 1.0), min_size=2, max_size=8), st.floats(-1.0, 1.0))
def test_within_noise_is_exactly_a_difference_under_two_standard_errors(accuracies: list[float], difference: float):
    noise = Noise(tuple(accuracies))
    margin = 2 * math.sqrt(2) * statistics.stdev(accuracies)
    assert noise.within(difference) == (abs(difference) < margin)


def test_the_noise_comes_from_the_seeds_evaluation_and_its_stored_trainings(tmp_path: Path) -> None:
    with build_run(tmp_path / "run") as store:
        seed = store.at(0, 0)
        assert seed is not None and "val_accuracy" in seed.metrics
        store.record_training(Training(seed.id, 2, {"val_accuracy": 0.5}, 3.0))
        store.record_training(Training(seed.id, 1, {"error": "train: timed out after 9.0 s"}, 9.0))
        assert [t.training_seed for t in store.trainings(seed.id)] == [1, 2]
        noise = run_noise(store, seed)
    assert noise.accuracies == (seed.metrics["val_accuracy"], 0.5)
