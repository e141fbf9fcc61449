"""Epoch data-loading time with and without the presizing cache, on real HAM10000 at 96x128.

Iterates `dls.train` once (no model), with the training augmentation on, for the first 2,000 pairs of HAM10000
(a lesion-grouped 80/20 split, so about 1,600 training images). Prints items/s for each and the ratio.
Run: LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 .venv/bin/python benchmarks/bench_data_cache.py
"""
import os, sys, time
import skinseg.core
from skinseg.core import find_data_dir
from skinseg.data import find_pairs, split_pairs
from skinseg.loaders import seg_dataloaders
import torch

N, SIZE, BS = int(os.environ.get('BENCH_N', 2000)), (96, 128), 16

def epoch(dls) -> tuple:
    "Seconds and items of one pass over the training loader."
    t, n = time.perf_counter(), 0
    for xb, yb in dls.train: n += len(xb)
    return time.perf_counter() - t, n

def main():
    ham = find_data_dir()
    if ham is None: print("HAM10000 not found under ../shared/data or $SKINSEG_DATA: nothing to measure"); return 0
    df = split_pairs(find_pairs(ham).iloc[:N])
    print(f"HAM10000, first {len(df)} pairs, {(~df.is_valid).sum()} training images, size {SIZE[0]}x{SIZE[1]}, bs {BS}, "
          f"augmentation on, torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    t = time.perf_counter(); cached = seg_dataloaders(df, SIZE, BS, cache=True); build = time.perf_counter() - t
    epoch(cached)  # warm-up (first-batch set-up)
    tc, n = epoch(cached)
    plain = seg_dataloaders(df, SIZE, BS, cache=False)
    tp, _ = epoch(plain)
    print(f"cache:    {tc:6.2f} s/epoch  {n / tc:7.0f} items/s   (one-off presize of {len(df)} pairs: {build:.1f} s)")
    print(f"no cache: {tp:6.2f} s/epoch  {n / tp:7.0f} items/s")
    print(f"ratio: the cached epoch loads {tp / tc:.1f}x faster; a model step of ~0.4 s per batch of {BS} "
          f"needs {BS / 0.4:.0f} items/s")
    return 0

if __name__ == '__main__': sys.exit(main())
