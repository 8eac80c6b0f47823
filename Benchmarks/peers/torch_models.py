"""The models the PyTorch peers train, written out so that torchvision is not needed.

small_cnn(): 28×28×1 → conv32 3×3 pad 1 → ReLU → maxpool 2 → conv64 3×3 pad 1 → ReLU → maxpool 2 →
flatten → dense 128 → ReLU → dense 10 (the `small` model of `tefla-bench cnn`).

ResNet18(classes): torchvision.models.resnet18's structure and names with PyTorch's default
initialisation of every layer (the `resnet18` model of `tefla-bench cnn` and its CPU peer).

ResNet(block, layers, classes), resnet18(classes), resnet50(classes): torchvision's ResNet
(v1.5: in a Bottleneck the stride is on the 3×3 convolution), with its module names (conv1, bn1,
relu, maxpool, layer1..layer4, avgpool, fc; in blocks conv1.., bn1.., downsample.0/.1) and its
initialisation (convolutions kaiming_normal_ fan_out/relu, batch norm weight 1 bias 0, no
zero-initialised residual branch). resnet18 is [2, 2, 2, 2] BasicBlock, resnet50 [3, 4, 6, 3]
Bottleneck (expansion 4).

Importing this module has no side effects.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def shortcut(cin, cout, stride):
    """torchvision's downsample branch: a strided 1×1 convolution and batch norm where the block
    changes the shape, else None (the identity)."""
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    """Two 3×3 convolutions; `cout` output channels (expansion 1)."""

    expansion = 1

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = shortcut(cin, cout, stride)

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    """1×1 to `width`, 3×3 (stride here, as torchvision's v1.5), 1×1 to 4·`width` channels."""

    expansion = 4

    def __init__(self, cin, width, stride):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = shortcut(cin, cout, stride)

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + (x if self.downsample is None else self.downsample(x)))


class ResNet18(nn.Module):
    """torchvision.models.resnet18's structure and names."""

    def __init__(self, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin, stages = 64, []
        for i in range(4):
            width = 64 << i
            stages.append(nn.Sequential(BasicBlock(cin, width, 1 if i == 0 else 2), BasicBlock(width, width, 1)))
            cin = width
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class ResNet(nn.Module):
    """torchvision.models.ResNet: `layers` blocks per stage (four stages of width 64, 128, 256,
    512 before the block's expansion; the first block of stages 2-4 has stride 2)."""

    def __init__(self, block, layers, classes=1000):
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"ResNet needs four stages, got {layers}")
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin, stages = 64, []
        for i, n in enumerate(layers):
            width = 64 << i
            blocks = []
            for j in range(n):
                blocks.append(block(cin, width, 2 if i > 0 and j == 0 else 1))
                cin = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18(classes=1000):
    return ResNet(BasicBlock, [2, 2, 2, 2], classes)


def resnet50(classes=1000):
    return ResNet(Bottleneck, [3, 4, 6, 3], classes)


class UNetBlock(nn.Module):
    def __init__(self, cin, cout, batch_norm, residual):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=not batch_norm)
        self.bn1 = nn.BatchNorm2d(cout) if batch_norm else None
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=not batch_norm)
        self.bn2 = nn.BatchNorm2d(cout) if batch_norm else None
        self.shortcut = nn.Conv2d(cin, cout, 1) if residual and cin != cout else None
        self.residual = residual

    def forward(self, x):
        y = self.conv1(x)
        if self.bn1 is not None:
            y = self.bn1(y)
        y = self.conv2(F.relu(y))
        if self.bn2 is not None:
            y = self.bn2(y)
        if self.residual:
            y = y + (self.shortcut(x) if self.shortcut is not None else x)
        return F.relu(y)


class UNet(nn.Module):
    """The library's UNet (Sources/Learner/Layers/UNet.swift) with its attribute names."""

    def __init__(self, cin, cout, depth=4, base=32, batch_norm=True, residual=False, upsampling="transposed"):
        super().__init__()
        self.depth = depth
        widths = [base << i for i in range(depth + 1)]
        for i in range(depth):
            setattr(self, f"down{i}", UNetBlock(cin if i == 0 else widths[i - 1], widths[i], batch_norm, residual))
        self.bottom = UNetBlock(widths[depth - 1], widths[depth], batch_norm, residual)
        for k, level in enumerate(range(depth - 1, -1, -1)):
            wide, narrow = widths[level + 1], widths[level]
            if upsampling == "transposed":
                setattr(self, f"up{k}", nn.ConvTranspose2d(wide, narrow, 2, stride=2))
            else:
                setattr(self, f"up{k}", nn.Sequential(
                    nn.Upsample(scale_factor=2, mode=upsampling, **({"align_corners": False} if upsampling == "bilinear" else {})),
                    nn.Conv2d(wide, narrow, 3, padding=1)))
            setattr(self, f"dec{k}", UNetBlock(2 * narrow, narrow, batch_norm, residual))
        self.head = nn.Conv2d(base, cout, 1)

    def forward(self, x):
        skips = []
        for i in range(self.depth):
            x = getattr(self, f"down{i}")(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottom(x)
        for k in range(self.depth):
            x = getattr(self, f"dec{k}")(torch.cat([skips[self.depth - 1 - k], getattr(self, f"up{k}")(x)], dim=1))
        return self.head(x)
