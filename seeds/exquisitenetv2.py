"""ExquisiteNetV2 (Jou and Su, arXiv 2105.09008): astevo's seed model.

Written for astevo from the paper's published architecture; every top-level
definition below is a block that evolution may rewrite.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def get_optimizer(model, lr, weight_decay=0, nesterov=True):
    """SGD with Nesterov momentum; decay only on weights that are not norm scales."""
    if not weight_decay:
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=nesterov)
    norm_types = (nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)
    norm_weights, decayed_weights, biases = [], [], []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if name == "bias":
                biases.append(param)
            elif isinstance(module, norm_types):
                norm_weights.append(param)
            else:
                decayed_weights.append(param)
    groups = [
        {"params": norm_weights, "weight_decay": 0.0},
        {"params": decayed_weights, "weight_decay": weight_decay},
        {"params": biases, "weight_decay": 0.0},
    ]
    return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=nesterov)


def pad_num(k_s):
    """Padding that keeps height and width for an odd kernel at stride 1."""
    return int((k_s - 1) * 0.5)


class SE(nn.Module):
    """Squeeze-excitation: a two-layer bottleneck gates each channel."""

    def __init__(self, cin, ratio):
        super().__init__()
        self.gavg = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(cin, int(cin / ratio), bias=False)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(int(cin / ratio), cin, bias=False)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        w = self.gavg(x).flatten(1)
        w = self.gate(self.fc2(self.act(self.fc1(w))))
        return x * w[:, :, None, None]


class SE_LN(nn.Module):
    """Squeeze-excitation without the bottleneck: LayerNorm over pooled channels."""

    def __init__(self, cin):
        super().__init__()
        self.gavg = nn.AdaptiveAvgPool2d(1)
        self.ln = nn.LayerNorm(cin)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        w = self.gate(self.ln(self.gavg(x).flatten(1)))
        return x * w[:, :, None, None]


class DFSEBV2(nn.Module):
    """Two residual stages: pointwise-BN-SiLU-depthwise-SE, then pointwise-BN-Hardswish-depthwise."""

    def __init__(self, cin, dw_s, is_LN):
        super().__init__()
        self.pw1 = nn.Conv2d(cin, cin, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)
        self.act1 = nn.SiLU()
        self.dw1 = nn.Conv2d(cin, cin, dw_s, padding=pad_num(dw_s), groups=cin)
        self.se = SE_LN(cin) if is_LN else SE(cin, 3)
        self.pw2 = nn.Conv2d(cin, cin, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cin)
        self.act2 = nn.Hardswish()
        self.dw2 = nn.Conv2d(cin, cin, dw_s, padding=pad_num(dw_s), groups=cin)

    def forward(self, x):
        y = self.se(self.dw1(self.act1(self.bn1(self.pw1(x)))))
        y = y + x
        z = self.dw2(self.act2(self.bn2(self.pw2(y))))
        return z + y


class MinPool2d(nn.Module):
    """Min pooling, expressed as max pooling of the negated input."""

    def __init__(self, ks, ceil_mode):
        super().__init__()
        self.ks = ks
        self.ceil_mode = ceil_mode

    def forward(self, x):
        return -F.max_pool2d(-x, self.ks, ceil_mode=self.ceil_mode)


class FCT(nn.Module):
    """Feature concentrator: max, min and learned stride-2 views, fused by a 1x1 conv."""

    def __init__(self, cin, cout):
        super().__init__()
        self.maxpool = nn.MaxPool2d(2, ceil_mode=True)
        self.minpool = MinPool2d(2, ceil_mode=True)
        self.dw = nn.Conv2d(cin, cin, 4, stride=2, padding=1, groups=cin, bias=False)
        self.pw = nn.Conv2d(3 * cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        x = torch.cat([self.maxpool(x), self.minpool(x), self.dw(x)], dim=1)
        return self.bn(self.pw(x))


class EVE(nn.Module):
    """Extreme value expansion: max and min pooling, fused by a 1x1 conv."""

    def __init__(self, cin, cout):
        super().__init__()
        self.maxpool = nn.MaxPool2d(2, ceil_mode=True)
        self.minpool = MinPool2d(2, ceil_mode=True)
        self.pw = nn.Conv2d(2 * cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        x = torch.cat([self.maxpool(x), self.minpool(x)], dim=1)
        return self.bn(self.pw(x))


class ME(nn.Module):
    """Max-pool expansion: halve the resolution, then widen with a 1x1 conv."""

    def __init__(self, cin, cout):
        super().__init__()
        self.maxpool = nn.MaxPool2d(2, ceil_mode=True)
        self.pw = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.pw(self.maxpool(x)))


class DW(nn.Module):
    """Depthwise conv with Hardswish before the classifier head."""

    def __init__(self, cin, dw_s):
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, dw_s, padding=pad_num(dw_s), groups=cin)
        self.act = nn.Hardswish()

    def forward(self, x):
        return self.act(self.dw(x))


class ExquisiteNetV2(nn.Module):
    """The whole network: five halvings take a 32x32 image to 1x1 before the classifier."""

    def __init__(self, class_num, img_channels):
        super().__init__()
        self.FCT = FCT(img_channels, 12)
        self.DFSEB1 = DFSEBV2(12, 3, True)
        self.EVE = EVE(12, 48)
        self.DFSEB2 = DFSEBV2(48, 3, True)
        self.ME3 = ME(48, 96)
        self.DFSEB3 = DFSEBV2(96, 3, True)
        self.ME4 = ME(96, 192)
        self.DFSEB4 = DFSEBV2(192, 3, True)
        self.ME5 = ME(192, 384)
        self.DFSEB5 = DFSEBV2(384, 3, True)
        self.DW = DW(384, 3)
        self.gavg = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(384, class_num)

    def forward(self, x):
        x = self.FCT(x)
        x = self.DFSEB1(x)
        x = self.EVE(x)
        x = self.DFSEB2(x)
        x = self.ME3(x)
        x = self.DFSEB3(x)
        x = self.ME4(x)
        x = self.DFSEB4(x)
        x = self.ME5(x)
        x = self.DFSEB5(x)
        x = self.DW(x)
        x = self.gavg(x).flatten(1)
        x = self.drop(x)
        return self.fc(x)
