#!/usr/bin/python3
"""The reference for `make bench-feed`: what a user would otherwise write to feed a teacher.

A PyTorch DataLoader over an ImageFolder with PIL and torchvision's eval transform (Resize,
CenterCrop, ToTensor, Normalize), workers = cores, batch 64, no model: it only measures how many
images per second the feeding side delivers. Prints one line:
`torch_feed_img_per_s N cpu_ms_per_img M (...)`, where M is the CPU time of this process and its
workers (getrusage, from the loader's start to the workers' exit) per image: less disturbed by
other load on the machine than img/s.

    /usr/bin/python3 scripts/bench_feed_torch.py --data /tmp/jpegs --resize 256 --crop 224
"""
import argparse
import os
import resource
import time

import torch
from torchvision import datasets, transforms


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--resize", type=int, default=256)
    ap.add_argument("--crop", type=int, default=224)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    a = ap.parse_args()
    tf = transforms.Compose([
        transforms.Resize(a.resize),
        transforms.CenterCrop(a.crop),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    ds = datasets.ImageFolder(a.data, transform=tf)
    dl = torch.utils.data.DataLoader(ds, batch_size=a.batch, num_workers=a.workers, shuffle=False)
    n = 0

    def cpu():
        s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime

    c0 = cpu()
    t0 = time.perf_counter()
    it = iter(dl)
    for x, _ in it:
        n += x.shape[0]
    dt = time.perf_counter() - t0
    del it  # joins the workers, so their CPU time is counted in RUSAGE_CHILDREN
    c1 = cpu()
    print("torch_feed_img_per_s %.1f cpu_ms_per_img %.3f (%d images, %.2f s, %d workers)"
          % (n / dt, 1000 * (c1 - c0) / n, n, dt, a.workers))


if __name__ == "__main__":
    main()
