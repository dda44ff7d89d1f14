"""The PyTorch sides of benchmarks/serving.py: the same networks as the zoo's exports, served
as a PyTorch user would serve them.

Run only by the benchmark-only PyTorch environment, never by the project's: this file
imports neither TensorFlow nor the zoo. Each side takes what the export's `serving_default`
takes, a batch of raw uint8 images in NHWC, applies the same preprocessing (rescale, mean,
deviation) and returns softmax probabilities, under torch.inference_mode. float32, or
bfloat16 under torch.autocast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.torch_resnet50 import ResNet50


class LeNet(nn.Module):
    """specs/lenet.yaml layer for layer: 61,706 parameters."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = torch.flatten(F.max_pool2d(F.relu(self.conv2(x)), 2), 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


# model -> (network, preprocessing: rescale, mean, deviation), as the exports' specs say
NETWORKS = {"resnet50": (ResNet50, (1 / 255, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))),
            "lenet": (LeNet, (1 / 255, (0.0,), (1.0,)))}


class Served(nn.Module):
    """Raw uint8 NHWC images -> probabilities, in `memory_format` inside."""

    def __init__(self, model: str, channels_last: bool):
        super().__init__()
        network, (rescale, mean, deviation) = NETWORKS[model]
        self.network = network().eval()
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.network.to(memory_format=self.memory_format)
        self.register_buffer("scale", torch.tensor(rescale) / torch.tensor(deviation))
        self.register_buffer("shift", torch.tensor(mean) / torch.tensor(deviation))

    def forward(self, images):
        x = images.float() * self.scale - self.shift  # NHWC: the channels are last
        x = x.permute(0, 3, 1, 2).contiguous(memory_format=self.memory_format)
        return F.softmax(self.network(x), dim=-1)


def parameters(model: str) -> int:
    return sum(parameter.numel() for parameter in NETWORKS[model][0]().parameters())


def server(model: str, threads: int, channels_last: bool, compiled: bool, bfloat16: bool):
    """A function of a numpy uint8 batch -> numpy probabilities."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    served = Served(model, channels_last)
    run = torch.compile(served) if compiled else served

    def serve(images):
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bfloat16):
            return run(torch.from_numpy(images)).float().numpy()

    return serve
