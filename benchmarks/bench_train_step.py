"""Training-step throughput (forward + backward + AdamW step) at 96x128, bs 16, on CPU.

Variants, each with a fresh model and optimizer, interleaved round by round in one process:
- `learner_*`: the real training path, `skinseg.train.seg_learner` on `skinseg.loaders.seg_dataloaders` (presizing
  cache, batch augmentation), with the smp U-Net (default) or fastai's DynamicUnet; fp32, bf16 autocast, and
  bf16 + channels_last;
- `learner_smp_noaug_*`: the same without augmentation, to separate its cost;
- `learner_smp_nocache_bf16`: without the presizing cache (each item decoded and resized every time);
- `plain_smp_*`: a plain PyTorch loop (torch AdamW, the same CE + Dice loss) on ready-made tensor batches.
A step's time is the wall time from the end of one training batch to the end of the next, so it includes
fetching the batch. Warm-up steps excluded; median over all timed steps of all rounds.
"""
import sys; from pathlib import Path; sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import *
import time, gc, numpy as np, torch
from skinseg.core import build_model, find_data_dir, IMAGENET_MEAN, IMAGENET_STD
from skinseg.data import find_pairs, presize, synthetic_dataset
from skinseg.loaders import seg_dataloaders
from skinseg.train import seg_learner, CEDiceLoss
from fastai.callback.core import Callback, CancelFitException, CancelValidException

class StepClock(Callback):
    "Record the wall time between the ends of consecutive training batches; stop the fit after `n` batches."
    order = 100
    def __init__(self, n): self.n = n
    def before_fit(self): self.ends = []
    def after_batch(self):
        if not self.training: return
        self.ends.append(time.perf_counter())
        if len(self.ends) >= self.n: raise CancelFitException()
    def before_validate(self): raise CancelValidException()
    @property
    def steps(self): return list(np.diff(self.ends))

def learner_steps(df, size, bs, n, arch='smp', bf16=False, channels_last=False, aug=True, cache=True, encoder='resnet34'):
    "Step times of `n - 1` steps of the real fastai training path (the first batch has no predecessor)."
    dls = seg_dataloaders(df, size=size, bs=bs, aug=aug, cache=cache, device='cpu')
    learn = seg_learner(dls, build_model(arch, encoder, size=size), bf16=bf16, channels_last=channels_last)
    clock = StepClock(n)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3, cbs=[clock])
    return clock.steps

def plain_steps(batches, size, n, bf16=False, encoder='resnet34'):
    "Step times of a plain PyTorch loop: smp U-Net, torch AdamW, CE + Dice loss, ready-made tensor batches."
    model, loss_fn = build_model('smp', encoder, size=size).train(), CEDiceLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.)
    ends = []
    for i in range(n):
        x, y = batches[i % len(batches)]
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16): pred = model(x)
        loss = loss_fn(pred.float(), y)
        loss.backward(); opt.step(); opt.zero_grad()
        ends.append(time.perf_counter())
    return list(np.diff(ends))

def get_pairs(n, quick):
    "`n` real HAM10000 pairs (or synthetic ones when the data is absent) plus a few validation rows."
    ham = None if quick else find_data_dir('ham10000')
    if ham is not None: df, source = find_pairs(ham).iloc[:n + 4].reset_index(drop=True), f'real HAM10000 (first {n} images, 200x150)'
    else:
        df = find_pairs(synthetic_dataset(scratch_dir()/'data', n=n + 4))
        source = 'synthetic (skinseg.data.synthetic_dataset)' + ('' if quick else ': HAM10000 not found')
    return df.assign(is_valid=[i >= n for i in range(len(df))]), source

def main(args=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument('--size', type=int, nargs=2, default=[96, 128])
    p.add_argument('--bs', type=int, default=16)
    p.add_argument('--warmup', type=int, default=2, help='untimed steps per variant per round')
    p.add_argument('--steps', type=int, default=5, help='timed steps per variant per round')
    p.add_argument('--rounds', type=int, default=2)
    p.add_argument('--encoder', default='resnet34')
    p.add_argument('--variants', default=None, help='comma-separated subset of the variants (default: all; --quick: one per option)')
    args = p.parse_args(args)
    if args.quick: args.size, args.bs, args.warmup, args.steps, args.rounds, args.encoder = [32, 32], 2, 1, 1, 1, 'resnet18'
    show_hardware()
    size, bs = tuple(args.size), args.bs
    n_batch = args.warmup + args.steps + 1  # +1: a step's time runs from the previous batch's end
    df, source = get_pairs(bs * n_batch, args.quick)
    t0 = time.perf_counter(); ims, mks = presize(df[~df.is_valid], size); presize_s = time.perf_counter() - t0
    norm = lambda a: (torch.from_numpy(a).permute(0, 3, 1, 2).float().div(255) - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    batches = [(norm(ims[i:i+bs]), torch.from_numpy(mks[i:i+bs]).long()) for i in range(0, len(ims) - bs + 1, bs)]
    print(f"# data: {source}; U-Nets with {args.encoder}; {size[0]}x{size[1]}, bs {bs}; presizing {len(ims)} images took {presize_s:.2f} s (not in step times)")
    V = {'learner_smp_fp32': dict(), 'learner_smp_bf16': dict(bf16=True), 'learner_smp_bf16_channels_last': dict(bf16=True, channels_last=True),
         'learner_dynamicunet_fp32': dict(arch='fastai'), 'learner_dynamicunet_bf16': dict(arch='fastai', bf16=True),
         'learner_smp_noaug_fp32': dict(aug=False), 'learner_smp_noaug_bf16': dict(aug=False, bf16=True),
         'learner_smp_nocache_bf16': dict(bf16=True, cache=False)}
    enc = args.encoder
    runs = {k: (lambda kw=kw: learner_steps(df, size, bs, n_batch, encoder=enc, **kw)) for k, kw in V.items()}
    runs |= {'plain_smp_fp32': lambda: plain_steps(batches, size, n_batch, encoder=enc),
             'plain_smp_bf16': lambda: plain_steps(batches, size, n_batch, bf16=True, encoder=enc)}
    if args.variants is None and args.quick:
        args.variants = 'learner_smp_bf16_channels_last,learner_dynamicunet_fp32,learner_smp_nocache_bf16,plain_smp_bf16'
    if args.variants: runs = {k: runs[k] for k in args.variants.split(',')}
    names, times = list(runs), {k: [] for k in runs}
    for r in range(args.rounds):
        for k in names[r % len(names):] + names[:r % len(names)]:
            torch.manual_seed(r); times[k] += runs[k]()[args.warmup:]; gc.collect()
    ips = {k: bs / median(t) for k, t in times.items()}
    best = {k: bs / min(t) for k, t in times.items()}  # the least disturbed step: on a shared machine, bursts of load hit some steps
    base_name = 'learner_smp_fp32' if 'learner_smp_fp32' in ips else names[0]
    base = ips[base_name]
    for k in names: print(f"{k:32s} {median(times[k]):6.3f} s/step  {ips[k]:6.1f} images/s  x{ips[k] / base:.2f} vs {base_name}   (best step: {best[k]:6.1f} images/s)")
    return finish(args, 'train_step', dict(
        data=source, encoder=enc, size=list(size), bs=bs, warmup_steps=args.warmup, timed_steps_per_round=args.steps, rounds=args.rounds,
        presize_s=round(presize_s, 3), s_per_step={k: round(median(t), 4) for k, t in times.items()},
        images_per_s={k: round(v, 2) for k, v in ips.items()}, images_per_s_best={k: round(v, 2) for k, v in best.items()}, baseline=base_name, speedup_vs_baseline={k: round(v / base, 3) for k, v in ips.items()},
        details={k: [round(x, 4) for x in t] for k, t in times.items()}))

if __name__ == '__main__': main()
