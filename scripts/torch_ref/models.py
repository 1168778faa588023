"""PyTorch reference models for sqakd's interop tests (SQAKD.md section 6).

ResNet-20, CIFAR style, with the common naming of akamaster/pytorch_resnet_cifar10 plus the
BatchNorm1d that SQAKD puts after the pooling:

    conv1, bn1                      conv3x3 in->16, BatchNorm2d(16), ReLU
    layer1.{0,1,2}                  16 channels
    layer2.{0,1,2}                  32 channels, stride 2 in layer2.0
    layer3.{0,1,2}                  64 channels, stride 2 in layer3.0
      block: conv1, bn1, ReLU, conv2, bn2, + shortcut, ReLU
      shortcut: option A, x[:, :, ::2, ::2] then (C_out - C_in)/2 zero channels before and after
    global average pool, bn2 = BatchNorm1d(64), linear = Linear(64, classes)

The C++ model is sqakd::nn::models::resnet20<in_channels, classes>; the name map between the
two is sqakd::io::resnet20_torch_names() (include/sqakd/io/state_dict.hpp).

Run with /usr/bin/python3 (Debian's python3-torch).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class LambdaLayer(nn.Module):
    """A parameter-free layer applying fn (the option-A shortcut)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def _option_a(in_planes, planes):
    pad = (planes - in_planes) // 2
    return LambdaLayer(lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, pad, pad), "constant", 0.0))


class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or in_planes != planes:
            assert stride == 2, "option A subsamples by exactly 2"
            self.shortcut = _option_a(in_planes, planes)
        else:
            self.shortcut = nn.Sequential()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNetCifar(nn.Module):
    def __init__(self, num_blocks=(3, 3, 3), in_channels=1, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._make_layer(16, 16, num_blocks[0], 1)
        self.layer2 = self._make_layer(16, 32, num_blocks[1], 2)
        self.layer3 = self._make_layer(32, 64, num_blocks[2], 2)
        self.bn2 = nn.BatchNorm1d(64)
        self.linear = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)  # SQAKD.md section 5

    @staticmethod
    def _make_layer(in_planes, planes, n, stride):
        blocks = [BasicBlock(in_planes, planes, stride)]
        blocks += [BasicBlock(planes, planes, 1) for _ in range(n - 1)]
        return nn.Sequential(*blocks)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        out = self.bn2(out)
        return self.linear(out)


def resnet20(in_channels=1, num_classes=10):
    return ResNetCifar((3, 3, 3), in_channels, num_classes)
