"""Training speed on CPU: bf16 autocast and channels-last on/off, and smp.Unet vs fastai DynamicUnet.

Seconds per training step (forward + backward + AdamW step) of a fastai `Learner` at 96x128, batch 16,
on synthetic data; variants are interleaved and repeated, the median step time is reported with its ratio
to the fp32 baseline. Run with tcmalloc: LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
"""
import sys, argparse, time, statistics, json
from pathlib import Path; sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import scratch_dir
import skinseg.core
from skinseg.core import build_model
import torch
from fastai.callback.core import Callback
from skinseg.data import synthetic_dataset, find_pairs
from skinseg.loaders import seg_dataloaders
from skinseg.train import seg_learner

class StepTimer(Callback):
    "Wall time of each training batch (forward, loss, backward, optimizer step)."
    order = -10
    def before_fit(self): self.times = []
    def before_batch(self): self.t = time.perf_counter()
    def after_batch(self):
        if self.training: self.times.append(time.perf_counter() - self.t)
    def before_validate(self): raise __import__('fastai').callback.core.CancelValidException

def step_times(dls, arch, bf16, channels_last, size, steps):
    learn = seg_learner(dls, build_model(arch, size=size), bf16=bf16, channels_last=channels_last)
    learn.remove_cb(learn.progress) if hasattr(learn, 'progress') else None
    timer = StepTimer(); learn.fit(1, 1e-3, cbs=[timer])
    return timer.times[2:2 + steps]  # the first two steps warm up oneDNN's kernels

if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--variants', default='smp:fp32,smp:bf16,smp:bf16+cl,smp:cl')
    p.add_argument('--rounds', type=int, default=2); p.add_argument('--steps', type=int, default=4)
    p.add_argument('--size', type=int, nargs=2, default=[96, 128]); p.add_argument('--bs', type=int, default=16)
    p.add_argument('--threads', type=int, default=0, help='torch threads (0: default)')
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    tmp = scratch_dir()
    df = find_pairs(synthetic_dataset(tmp/'data', n=a.bs * (a.steps + 2) + 4))
    df['is_valid'] = [i < 4 for i in range(len(df))]
    dls = seg_dataloaders(df, size=tuple(a.size), bs=a.bs, aug=True)
    res = {v: [] for v in a.variants.split(',')}
    for _ in range(a.rounds):
        for v in res:
            arch, opts = v.split(':')
            res[v] += step_times(dls, arch, 'bf16' in opts, 'cl' in opts, tuple(a.size), a.steps)
    base = statistics.median(next(iter(res.values())))
    print(f"{'variant':<14} {'s/step':>7} {'img/s':>7} {'vs first':>8}   ({a.size[0]}x{a.size[1]}, bs {a.bs}, {torch.get_num_threads()} threads)")
    for v, ts in res.items():
        m = statistics.median(ts)
        print(f"{v:<14} {m:7.3f} {a.bs / m:7.1f} {base / m:7.2f}x")
    print(json.dumps({v: round(statistics.median(ts), 4) for v, ts in res.items()}))
