"""A seed whose constructor names the class count and the channels otherwise: the probe says which setting maps
them, the settings map them, and a name the constructor lacks is an error rather than a guess."""

from __future__ import annotations

from typing import Any

from astevo.evaluation.cascade import evaluate
from astevo.evaluation.sandboxed.entry_points import check_candidate
from astevo.evaluation.tasks import Checks, Network, as_record
from astevo.settings import FitnessSettings

FOREIGN = """
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, n_out=10, in_c=3):
        super().__init__()
        self.conv = nn.Conv2d(in_c, 8, 3)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, n_out)

    def forward(self, x):
        return self.fc(self.pool(self.conv(x)).flatten(1))
"""


def payload(classes: str | None = None, channels: str | None = None) -> dict[str, Any]:
    """Four classes of grey images, as an image folder of the user's would give."""
    network = Network(FOREIGN, ("Net",), ("Net",), 4, 1, 28, classes_argument=classes, channels_argument=channels)
    return as_record(Checks(network))


def failure(result: dict[str, Any]) -> tuple[str, str]:
    failed = next(stage for stage in result["stages"] if not stage["ok"])
    return failed["name"], failed["reason"]


def test_the_probe_names_the_setting_for_channels_and_then_for_classes() -> None:
    stage, reason = failure(check_candidate(payload()))
    assert stage == "probe" and "input-channels argument astevo knows" in reason
    assert "fitness.channels_argument" in reason
    stage, reason = failure(check_candidate(payload(channels="in_c")))
    assert stage == "probe" and "to (4, 10), expected (4, 4)" in reason
    assert (
        "class-count argument astevo knows (class_num, num_classes" in reason and "fitness.classes_argument" in reason
    )
    mapped = check_candidate(payload(channels="in_c", classes="n_out"))
    assert all(stage["ok"] for stage in mapped["stages"]) and mapped["metrics"]["parameters"] == 8 * 9 + 8 + 8 * 4 + 4


def test_a_name_the_constructor_lacks_is_an_error_not_a_guess() -> None:
    stage, reason = failure(check_candidate(payload(classes="num_classes", channels="in_c")))
    assert stage == "build"
    assert (
        "Net has no argument 'num_classes' (the setting fitness.classes_argument); its arguments are: n_out, in_c"
        in (reason)
    )


def test_the_settings_reach_the_sandboxed_checks() -> None:
    grey = FitnessSettings(train=False)  # Fashion-MNIST: ten classes, one channel
    assert not evaluate(FOREIGN, grey).valid
    assert evaluate(FOREIGN, FitnessSettings(train=False, channels_argument="in_c")).valid
