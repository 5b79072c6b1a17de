"""Size edits: literals found and rewritten as a unit, roles measured by real meta-device builds in the sandbox,
and the failure modes of equal numbers, derived widths, constants, defaults, hard-coded views and groups."""

from __future__ import annotations

import random

from astevo.code.blocks import ModelFile
from astevo.code.resizing import (
    groupable_calls,
    literals,
    stages,
    with_keyword,
    with_stage_repeated,
    with_values,
    without_stage,
)
from astevo.evaluation.base import Size
from astevo.evaluation.cascade import evaluate
from astevo.evaluation.checks import BlockCheck
from astevo.evaluation.executors.local import LocalEvaluator
from astevo.evolution.block_choice import choose_block, size_weights
from astevo.paths import default_seed_path
from astevo.settings import FitnessSettings
from astevo.variation.crossover import crossover
from astevo.variation.keyword_values import keyword_choices
from astevo.variation.structural import size_options

SEED = ModelFile.read(default_seed_path())
FAST = FitnessSettings(train=False)

HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n\n"

LENET = (
    HEADER
    + """class LeNet(nn.Module):
    def __init__(self, num_classes=10, img_channels=1):
        super().__init__()
        self.conv1 = nn.Conv2d(img_channels, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(-1, 16 * 5 * 5)
        return self.fc2(F.relu(self.fc1(x)))
"""
)

THREES = (
    HEADER
    + """class Threes(nn.Module):
    def __init__(self, num_classes, img_channels):
        super().__init__()
        self.a = nn.Conv2d(img_channels, 3, 3, padding=1)
        self.b = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        x = self.b(self.a(x))
        return self.fc(self.pool(x).flatten(1))
"""
)

GROUPED = (
    HEADER
    + """WIDTH = 8


class Grouped(nn.Module):
    def __init__(self, num_classes, img_channels, depth=2):
        super().__init__()
        self.stem = nn.Conv2d(img_channels, 12, 3, padding=1)
        self.mix = nn.Conv2d(12, 12, 3, padding=1, groups=3)
        self.extra = nn.Conv2d(12, WIDTH, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(WIDTH, num_classes)

    def forward(self, x):
        x = self.stem(x)
        x = self.mix(x)
        x = self.extra(x)
        return self.fc(self.pool(x).flatten(1))
"""
)


def options_for(source: str, name: str):
    model_file = ModelFile(source, f"{name}.py")
    found = size_options(model_file, name, BlockCheck(LocalEvaluator(), FAST, model_file, name))
    return model_file, {option.label: option for option in found.options}, found.parent_parameters


def test_literals_are_found_with_what_they_are_passed_to() -> None:
    block = SEED.blocks["ExquisiteNetV2"].source
    found = literals(block, {"DFSEBV2": ("cin", "dw_s", "is_LN"), "ME": ("cin", "cout")})
    values = sorted({literal.value for literal in found if literal.in_constructor})
    assert values == [1, 3, 12, 48, 96, 192, 384]
    assert {literal.parameter for literal in found if literal.value == 3} == {"dw_s", None}  # DW(384, 3) unknown
    assert all(literal.in_constructor for literal in found)  # the seed's forward does no arithmetic with literals


def test_a_new_value_replaces_exactly_the_chosen_literals() -> None:
    block = SEED.blocks["ExquisiteNetV2"].source
    forty_eights = [literal for literal in literals(block) if literal.value == 48]
    changed = with_values(block, [(literal, 32) for literal in forty_eights])
    assert "EVE(12, 32)" in changed and "DFSEBV2(32, 3, True)" in changed and "ME(32, 96)" in changed
    assert "48" not in changed and changed.count("\n") == block.count("\n")


def test_stages_are_removed_and_repeated_in_init_and_forward_together() -> None:
    block = SEED.blocks["ExquisiteNetV2"].source
    found = {stage.name: stage for stage in stages(block)}
    assert {"FCT", "DFSEB1", "DFSEB5", "DW", "drop"} <= set(found) and "fc" not in found  # fc is returned, not mapped
    removed = without_stage(block, found["DFSEB3"])
    assert "DFSEB3" not in removed
    repeated = with_stage_repeated(block, found["DFSEB3"], {"DFSEB3_2"})
    assert "self.DFSEB3_3 = DFSEBV2(96, 3, True)" in repeated and "x = self.DFSEB3_3(x)" in repeated


def test_the_seeds_top_level_offers_widths_kernels_and_depth_that_all_pass_the_real_checks() -> None:
    model_file, options, parent = options_for(SEED.source, "ExquisiteNetV2")
    assert parent == 518_126
    assert {"width 48 -> 24", "width 384 -> 96", "remove DFSEB5", "repeat DFSEB3", "size of dw_s 3 -> 5"} <= set(
        options
    )
    assert not any(label.startswith("width 3 ") or label.startswith("width 1 ") for label in options)
    check = BlockCheck(LocalEvaluator(), FAST, model_file, "ExquisiteNetV2")
    for label in ("width 384 -> 96", "remove DFSEB5", "size of dw_s 3 -> 5"):
        assert check(options[label].source) is None, label
        measured = check.size(options[label].source)
        assert measured is not None and measured.parameters == options[label].parameters
    assert options["width 384 -> 96"].parameters <= 0.6 * parent


def test_a_width_multiplier_scales_every_channel_chain_at_once() -> None:
    _, options, parent = options_for(SEED.source, "ExquisiteNetV2")
    halved = options["every width x0.5"]
    for written in ("FCT(img_channels, 6)", "EVE(6, 24)", "ME(48, 96)", "DFSEBV2(192, 3, True)", "nn.Linear(192,"):
        assert written in halved.source, written
    assert "DW(192, 3)" in halved.source  # the kernel 3 beside the width keeps its value
    assert halved.parameters < 0.3 * parent and options["every width x2"].parameters > 3 * parent


def test_convolutions_without_groups_are_offered_grouped_where_the_channels_divide() -> None:
    model_file, options, parent = options_for(SEED.source, "DFSEBV2")
    assert set(options) == {"groups of pw1 -> 2", "groups of pw1 -> 4", "groups of pw2 -> 2", "groups of pw2 -> 4"}
    grouped = options["groups of pw1 -> 4"]
    assert "self.pw1 = nn.Conv2d(cin, cin, 1, bias=False, groups=4)" in grouped.source
    assert grouped.source.count("groups=") == 3  # the two depthwise convolutions keep theirs
    assert grouped.kind == "groups" and grouped.parameters <= 0.8 * parent
    check = BlockCheck(LocalEvaluator(), FAST, model_file, "DFSEBV2")
    assert check(grouped.source) is None
    _, threes, _ = options_for(THREES, "Threes")  # 1 -> 3 -> 8 channels: neither 2 nor 4 divides both sides
    assert not any(label.startswith("groups") for label in threes)


def test_a_group_count_goes_last_into_the_call_however_it_is_written() -> None:
    block = (
        "class Net(nn.Module):\n"
        "    def __init__(self, c):\n"
        "        super().__init__()\n"
        "        self.a = nn.Conv2d(\n"
        "            c, c, 1,  # pointwise (sic)\n"
        "        )\n"
        "        self.b = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, 1, 2), nn.Conv1d(c, c, 1))\n"
        "        self.c = nn.Conv2d(**options)\n"
        "        self.d = Mixer()\n"
    )
    signatures = {
        name: ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias")
        for name in ("nn.Conv2d", "nn.Conv1d")
    } | {"Mixer": ("groups",)}
    found = groupable_calls(block, signatures)
    assert [call.name for call in found] == ["a", "nn.Conv1d on line 7", "d"]  # groups given positionally, or by **
    assert "            c, c, 1, groups=2,  # pointwise (sic)\n        )\n" in with_keyword(block, found[0], "groups=2")
    assert "nn.Conv1d(c, c, 1, groups=4))" in with_keyword(block, found[1], "groups=4")
    assert "self.d = Mixer(groups=2)\n" in with_keyword(block, found[2], "groups=2")


def test_a_derived_width_is_never_offered_on_its_own() -> None:
    """EVE's `2 * cin` must match the two pooled views it concatenates: changing the 2 breaks it."""
    _, options, _ = options_for(SEED.source, "EVE")
    assert not any(label.startswith("width 2 ") for label in options)


def test_equal_numbers_that_mean_different_things_move_separately() -> None:
    model_file, options, _ = options_for(THREES, "Threes")
    width = options["width 3 -> 4"].source
    assert "nn.Conv2d(img_channels, 4, 3, padding=1)" in width and "nn.Conv2d(4, 8, 3, padding=1)" in width
    kernel = next(option for label, option in options.items() if label.startswith("size of kernel_size 3 "))
    assert "nn.Conv2d(img_channels, 3, " in kernel.source and "nn.Conv2d(3, 8, " in kernel.source


REPEATED = (
    HEADER
    + """class Repeated(nn.Module):
    def __init__(self, num_classes, img_channels):
        super().__init__()
        self.stem = nn.Conv2d(img_channels, 8, 3, padding=1)
        self.body = nn.Sequential(*[nn.Conv2d(8, 8, 3, padding=1) for _ in range(3)])
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        x = self.body(self.stem(x))
        return self.fc(x.mean((2, 3)))
"""
)


def test_a_repeat_count_is_a_size_of_its_own_not_a_width_or_a_kernel() -> None:
    _, options, parent = options_for(REPEATED, "Repeated")
    assert "size 3 -> 1" in options and options["size 3 -> 1"].parameters < parent
    assert "range(1)" in options["size 3 -> 1"].source and options["size 3 -> 1"].source.count(", 3, ") == 2
    assert "size of kernel_size 3 -> 5" in options
    assert "range(3)" in options["size of kernel_size 3 -> 5"].source
    assert not any(label.startswith("width 3 ") for label in options)
    assert "width 8 -> 4" in options


def test_the_class_count_and_hard_coded_views_are_kept_consistent_or_left_alone() -> None:
    _, options, _ = options_for(LENET, "LeNet")
    assert not any(" 10 -> " in label for label in options)  # the output size is the class count
    width = options["width 16 -> 8"].source
    assert "x.view(-1, 8 * 5 * 5)" in width and "nn.Linear(8 * 5 * 5, 120)" in width
    _, hard_coded, _ = options_for(LENET.replace("x.view(-1, 16 * 5 * 5)", "x.view(-1, 400)"), "LeNet")
    assert not any(label.startswith("width 16 ") for label in hard_coded)  # 400 cannot follow: never offered


def test_widths_offered_divide_by_groups_and_constants_and_defaults_stay() -> None:
    _, options, _ = options_for(GROUPED, "Grouped")
    twelves = [label for label in options if label.startswith("width 12 ")]
    assert sorted(twelves) == ["width 12 -> 18", "width 12 -> 24", "width 12 -> 6"]  # 4 and 8: not by groups=3
    assert not any(label.startswith("width 8 ") for label in options)  # a module constant is not the block's
    assert all("nn.Linear(WIDTH, num_classes)" in option.source for option in options.values())
    assert all("def __init__(self, num_classes, img_channels, depth=2):" in o.source for o in options.values())


def test_added_arguments_are_keywords_with_values_that_suit_them() -> None:
    choices = keyword_choices("nn.BatchNorm2d", SEED.source, "nn.BatchNorm2d(cout)")
    assert all("=" in choice for choice in choices)
    assert "affine=False" in choices and "affine=True" not in choices  # only a flag's other value
    eps = [float(choice.split("=")[1]) for choice in choices if choice.startswith("eps=")]
    assert eps and all(1e-9 < value < 1e-2 for value in eps)
    momentum = [float(choice.split("=")[1]) for choice in choices if choice.startswith("momentum=")]
    assert momentum and all(0 < value < 1 for value in momentum)
    assert not any(choice.startswith("num_features=") for choice in choices)  # given positionally
    dropout = keyword_choices("nn.Dropout", SEED.source, "nn.Dropout(p=0.5)")
    assert dropout == []  # p is given; inplace never helps


def test_a_size_intent_is_drawn_only_for_blocks_that_can_move_the_size_and_favours_sized_ones() -> None:
    blocks = ["MinPool2d", "SE_LN", "DW", "ME", "ExquisiteNetV2"]
    parameters = {"MinPool2d": 0, "SE_LN": 1_464, "DW": 40_000, "ME": 93_000, "ExquisiteNetV2": 518_126}
    # ME: one literal above 1 (its pooling 2) and a convolution it could group (DW's is grouped already);
    # the top level: 22 literals and 12 stages
    assert size_weights(SEED, blocks, parameters, must_shrink=True) == [0, 0, 1, 3, 35]
    assert size_weights(SEED, blocks, parameters, must_shrink=False) == [1, 1, 1, 3, 35]
    assert size_weights(SEED, blocks, None, must_shrink=True) == [1, 1, 1, 3, 35]  # counts unknown: none left out
    rng = random.Random(0)
    drawn = [choose_block(SEED, blocks, "fewer_parameters", rng, parameters) for _ in range(400)]
    assert {"MinPool2d", "SE_LN"}.isdisjoint(drawn) and drawn.count("ExquisiteNetV2") > drawn.count("ME") > 0
    bold = [choose_block(SEED, blocks, "bold_change", rng, parameters) for _ in range(400)]
    assert "SE_LN" in bold and bold.count("ExquisiteNetV2") > 300
    assert drawn.count("MinPool2d") == 0 and "MinPool2d" in [
        choose_block(SEED, blocks, "complexity", rng, parameters) for _ in range(60)
    ]


def test_the_parent_size_is_measured_once_by_the_fast_checks_unless_given() -> None:
    given = Size(1000, 5000)
    assert BlockCheck(LocalEvaluator(), FAST, SEED, "DW", parent_size=given).parent_size() == given
    measured = BlockCheck(LocalEvaluator(), FAST, SEED, "DW").parent_size()
    assert measured is not None and measured.parameters == 518_126 and measured.macs > 0


def test_crossover_of_two_resized_parents_is_consistent_or_stopped_by_the_fast_checks() -> None:
    """Two parents that resized different channel groups of the same block: the three-way merge may mix
    their lines. Whatever it makes, the shape probe decides before any training."""
    block = SEED.blocks["ExquisiteNetV2"].source
    narrow_48 = with_values(block, [(lit, 24) for lit in literals(block) if lit.value == 48])
    narrow_96 = with_values(block, [(lit, 48) for lit in literals(block) if lit.value == 96])
    first, second = SEED.replace("ExquisiteNetV2", narrow_48), SEED.replace("ExquisiteNetV2", narrow_96)
    seen = set()
    for seed in range(6):
        result = crossover(first, second, SEED, ["ExquisiteNetV2", "DW"], random.Random(seed))
        assert result.child is not None
        top = result.child.blocks["ExquisiteNetV2"].source
        if top in seen:
            continue
        seen.add(top)
        verdict = evaluate(result.child.source, FAST)
        if top in (narrow_48, narrow_96, block):
            assert verdict.valid, verdict.problem
        elif not verdict.valid:
            assert verdict.failure is not None and verdict.failure.name == "probe", verdict.problem
    assert len(seen) >= 2
