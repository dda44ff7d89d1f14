"""A hand-written PyTorch ResNet-50, the other side of benchmarks/pytorch_comparison.py.

    /work/venv-pytorch/bin/python benchmarks/torch_resnet50.py      # parameter counts
    /work/venv-pytorch/bin/python benchmarks/torch_resnet50.py --threads 2 --bf16 --steps 20

Run only by the benchmark-only PyTorch environment (`pip install torch==2.13.0 numpy`),
never by the project's: this file imports neither TensorFlow nor the zoo, and PyTorch is
not a project dependency.

The network is the one specs/resnet50.yaml builds (ResNet v1, He et al. 2015, Table 1),
layer for layer: convolutions without bias, each followed by batch normalization (epsilon
1e-5; PyTorch's momentum 0.1 is Keras's 0.9), the stride on the first 1x1 convolution of a
downsampling block (not on the 3x3 as torchvision's v1.5), a projected shortcut in the
first block of every stage, 1000 classes; He-normal convolution weights (fan in). Both
have 25,557,032 trainable parameters. The head returns logits: the softmax sits in the
cross-entropy, where PyTorch users put it.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

WARMUP_STEPS = 3  # as benchmarks/measure.py: the first slow steps are not timed
WIDTHS, DEPTHS, CLASSES = (64, 128, 256, 512), (3, 4, 6, 3), 1000


def conv(inputs: int, outputs: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(inputs, outputs, kernel, stride, padding=kernel // 2, bias=False)


class Bottleneck(nn.Module):
    def __init__(self, inputs: int, filters: int, stride: int, project: bool):
        super().__init__()
        self.conv1, self.bn1 = conv(inputs, filters, 1, stride), nn.BatchNorm2d(filters)
        self.conv2, self.bn2 = conv(filters, filters, 3), nn.BatchNorm2d(filters)
        self.conv3, self.bn3 = conv(filters, 4 * filters, 1), nn.BatchNorm2d(4 * filters)
        self.shortcut = (nn.Sequential(conv(inputs, 4 * filters, 1, stride),
                                       nn.BatchNorm2d(4 * filters))
                         if project else nn.Identity())

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = F.relu(self.bn2(self.conv2(y)), inplace=True)
        y = self.bn3(self.conv3(y))
        return F.relu(y + self.shortcut(x), inplace=True)


class ResNet50(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(conv(3, 64, 7, 2), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, 2, padding=1))
        blocks, inputs = [], 64
        for stage, (filters, depth) in enumerate(zip(WIDTHS, DEPTHS)):
            for index in range(depth):
                # The first block of a stage projects its shortcut; stages 2-4 also stride.
                stride = 2 if index == 0 and stage > 0 else 1
                blocks.append(Bottleneck(inputs, filters, stride, project=index == 0))
                inputs = 4 * filters
        self.stages = nn.Sequential(*blocks)
        self.head = nn.Linear(inputs, CLASSES)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):  # Keras's he_normal (there truncated)
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")

    def forward(self, x):
        x = self.stages(self.stem(x))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def parameter_counts(model: nn.Module) -> dict:
    """Counted as Keras counts them: trainable weights, and in all also the moving means and
    variances of batch normalization (not PyTorch's num_batches_tracked)."""
    trainable = sum(parameter.numel() for parameter in model.parameters())
    statistics = sum(buffer.numel() for name, buffer in model.named_buffers()
                     if name.endswith(("running_mean", "running_var")))
    return {"trainable_params": trainable, "total_params": trainable + statistics}


def measure(threads: int, image: int, batch: int, steps: int, bfloat16: bool = False,
            channels_last: bool = False) -> dict:
    """Training images/s on one random in-memory batch repeated: SGD with momentum 0.9,
    cross-entropy, float32 or under bfloat16 autocast, in NCHW or channels_last memory."""
    torch.set_num_threads(threads)  # its inter-op pool serves TorchScript's fork, not this
    torch.manual_seed(0)
    model = ResNet50().train()
    images = torch.rand(batch, 3, image, image)
    labels = torch.randint(0, CLASSES, (batch,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()

    for _ in range(WARMUP_STEPS):
        step()
    began = time.perf_counter()
    for _ in range(steps):
        step()
    return {"img_s": batch * steps / (time.perf_counter() - began),
            "precision": "bf16 autocast" if bfloat16 else "float32",
            "layout": "NHWC (channels_last)" if channels_last else "NCHW",
            "params": parameter_counts(model)["trainable_params"], "torch": torch.__version__}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--image", type=int, default=96)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=0, help="0: only count parameters")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    parser.add_argument("--channels-last", action="store_true")
    args = parser.parse_args()
    counts = parameter_counts(ResNet50())
    print(f"PyTorch {torch.__version__} ResNet-50: {counts['trainable_params']:,} trainable "
          f"parameters, {counts['total_params']:,} with batch normalization's statistics")
    if args.steps:
        print(measure(args.threads, args.image, args.batch, args.steps, args.bf16,
                      args.channels_last))


if __name__ == "__main__":
    main()
