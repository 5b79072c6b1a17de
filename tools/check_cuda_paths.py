#!/usr/bin/env python3
"""The CUDA code paths of astevo's training, exercised on this machine's GPU; prints what it measured.

Device placement (model, data and batches on the GPU), AMP (autocast and the gradient scaler
in a real training), the pinned-memory fallback for data that does not fit, and astevo's training
throughput on the seed. Run by tools/gpu_check.sh; exits 1 when there is no CUDA device.

    python tools/check_cuda_paths.py [--data DIR] [--images N]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from astevo.data.loading import load_dataset  # noqa: E402
from astevo.evaluation.sandboxed.train import BatchMaker, evaluate_accuracy, pick_device, train  # noqa: E402
from astevo.settings import TrainBudget  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--images", type=int, default=20_000)
    arguments = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing checked")
        sys.exit(1)
    device = pick_device()
    print(f"device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    data = load_dataset("fashion-mnist", arguments.data, limit_train=arguments.images)
    spec = importlib.util.spec_from_file_location("seed", REPO / "seeds" / "exquisitenetv2.py")
    assert spec is not None and spec.loader is not None
    seed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seed)
    torch.manual_seed(0)
    model = seed.ExquisiteNetV2(data.num_classes, data.channels)

    batches = BatchMaker(data.train, data, device, padding=4)
    inputs, labels = batches.plain(slice(0, 8))
    print(
        f"placement: data set stored on {batches.storage}, batches on {inputs.device}, channels_last "
        f"{inputs.is_contiguous(memory_format=torch.channels_last)}"
    )
    pinned = data.train.images[:1024].pin_memory()
    copied = pinned.to(device, non_blocking=True)
    torch.cuda.synchronize()
    print(
        f"pinned-memory fallback: host tensor pinned {pinned.is_pinned()}, non-blocking copy equal "
        f"{bool(torch.equal(copied.cpu(), pinned))}"
    )

    with torch.autocast("cuda"):
        dtype = model.to(device)(inputs.to(device)).dtype
    print(f"AMP: forward under autocast gives {dtype}")
    budget = TrainBudget(epochs=1.0, batch_size=128, max_seconds=120.0)
    torch.cuda.reset_peak_memory_stats()
    run = train(model, data, budget, device=device)
    accuracy = evaluate_accuracy(model, data.val, data, device, 512)
    print(
        f"training (AMP + GradScaler): {run.images_seen} images in {run.seconds:.2f} s, "
        f"{run.images_per_second:,.0f} images/s, loss {run.train_loss:.3f}, val accuracy {accuracy:.3f}, "
        f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB, params on "
        f"{next(model.parameters()).device}"
    )
    started = time.perf_counter()
    second = train(seed.ExquisiteNetV2(data.num_classes, data.channels), data, budget, device=device)
    print(
        f"second training (warm cuDNN autotune): {second.images_per_second:,.0f} images/s "
        f"({time.perf_counter() - started:.2f} s)"
    )


if __name__ == "__main__":
    main()
