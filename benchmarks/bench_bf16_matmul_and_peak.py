"""bf16 vs fp32 matmul speed on this CPU, the U-Net's FLOPs, and the fraction of peak that training and inference reach.

- 4096x4096 matmul GFLOP/s in fp32 and bf16 (2 n^3 FLOPs per product), interleaved, median of repeats; and the
  same product as a 1x1 convolution, which PyTorch runs with oneDNN rather than MKL's GEMM. The measured peak of
  a dtype is the faster of the two.
- Forward FLOPs per image of the smp and fastai ResNet-34 U-Nets at 96x128 and 256x256, and forward+backward
  FLOPs of a training step, counted with `torch.utils.flop_counter.FlopCounterMode` (convolutions and matmuls,
  2 FLOPs per multiply-add; elementwise ops, norms and the optimizer are not counted).
- Achieved FLOP/s of smp U-Net inference (bs 16) and of a plain training step (bs 16, AdamW), fp32 and bf16
  autocast, at 96x128, as a fraction of two peaks: the measured 4096^2 matmul of the same dtype, and the
  theoretical cores x clock x FLOPs/cycle/core (fp32: 2 AVX-512 FMA units x 16 lanes x 2 = 64; bf16 with
  AVX512_BF16's VDPBF16PS: 2 units x 32 products x 2 = 128), with the clock /proc/cpuinfo reports.
"""
import sys; from pathlib import Path; sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import *
import torch
from torch.utils.flop_counter import FlopCounterMode
from skinseg.core import build_model

def matmul_gflops(n, repeats):
    "GFLOP/s of an `n x n` matmul in fp32 and bf16, and of the same product as a 1x1 convolution (oneDNN), interleaved."
    a32, b32 = torch.randn(n, n), torch.randn(n, n)
    a16, b16 = a32.bfloat16(), b32.bfloat16()
    side = int(n ** 0.5)  # n pixels x n channels through an n x n 1x1 kernel: the same 2 n^3 FLOPs
    x32, w32 = torch.randn(1, n, side, n // side), torch.randn(n, n, 1, 1)
    x16, w16 = x32.bfloat16(), w32.bfloat16()
    conv = torch.nn.functional.conv2d
    with torch.inference_mode():
        t = interleaved({'fp32': lambda: a32 @ b32, 'bf16': lambda: a16 @ b16,
                         'conv1x1_fp32': lambda: conv(x32, w32), 'conv1x1_bf16': lambda: conv(x16, w16)}, repeats=repeats, warmup=1)
    return {k: 2 * n**3 / v['median_s'] / 1e9 for k, v in t.items()}, t

def blas_info() -> str:
    "The BLAS PyTorch was built with, and its oneDNN version."
    cfg = torch.__config__.show()
    blas = next((w.split('=')[1].rstrip(',') for w in cfg.split() if w.startswith('BLAS_INFO=')), '?')
    dnn = next((l.strip(' -') for l in cfg.splitlines() if 'DNN' in l and ' v' in l), '')
    return f"{blas}; {dnn}"

def count_flops(fn) -> int:
    "FLOPs `fn()` performs, as FlopCounterMode counts them."
    with FlopCounterMode(display=False) as fc: fn()
    return int(fc.get_total_flops())

def model_flops(sizes, archs=('smp', 'fastai')):
    "Forward FLOPs per image, and forward+backward FLOPs per image of a training step, per architecture and size."
    res = {}
    for arch in archs:
        for h, w in sizes:
            m = build_model(arch, size=(h, w)); x = torch.randn(2, 3, h, w)  # 2: batch norm needs >1 value in training
            with torch.no_grad(): fwd = count_flops(lambda: m.eval()(x)) / 2
            m.train()
            def step(): m(x).float().mean().backward()
            res[f'{arch}_{h}x{w}'] = dict(forward_gflop=round(fwd / 1e9, 3), train_fwd_bwd_gflop=round(count_flops(step) / 2e9, 3))
    return res

def throughput(size, bs, repeats, steps):
    "Images/s of smp U-Net inference and of plain training steps (torch AdamW, CE loss), fp32 and bf16 autocast."
    h, w = size
    model = build_model('smp', size=size)
    x, y = torch.randn(bs, 3, h, w), torch.randint(0, 2, (bs, h, w))
    def infer(bf16):
        model.eval()
        with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16): model(x)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    def train(bf16):
        model.train()
        for _ in range(steps):
            with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16): out = model(x)
            torch.nn.functional.cross_entropy(out.float(), y).backward(); opt.step(); opt.zero_grad()
    t = interleaved({'infer_fp32': lambda: infer(False), 'infer_bf16': lambda: infer(True),
                     'train_fp32': lambda: train(False), 'train_bf16': lambda: train(True)}, repeats=repeats, warmup=1)
    return {k: (bs * (steps if k.startswith('train') else 1)) / v['median_s'] for k, v in t.items()}, t

def main(args=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument('--n', type=int, default=4096, help='matrix size')
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--bs', type=int, default=16)
    p.add_argument('--train-steps', type=int, default=3, help='training steps per timed repeat')
    args = p.parse_args(args)
    if args.quick: args.n, args.repeats, args.bs, args.train_steps = 256, 1, 2, 1
    show_hardware()
    hw = hardware()
    mm, mm_t = matmul_gflops(args.n, args.repeats)
    print(f"matmul {args.n}x{args.n}: fp32 {mm['fp32']:.0f} GFLOP/s, bf16 {mm['bf16']:.0f} GFLOP/s (x{mm['bf16'] / mm['fp32']:.2f}); "
          f"as a 1x1 convolution (oneDNN): fp32 {mm['conv1x1_fp32']:.0f}, bf16 {mm['conv1x1_bf16']:.0f} GFLOP/s")
    peak = {dt: max(mm[dt], mm[f'conv1x1_{dt}']) for dt in ('fp32', 'bf16')}
    sizes = [(32, 32)] if args.quick else [(96, 128), (256, 256)]
    flops = model_flops(sizes)
    for k, v in flops.items(): print(f"{k:16s} forward {v['forward_gflop']:.2f} GFLOP/image, training fwd+bwd {v['train_fwd_bwd_gflop']:.2f} GFLOP/image")
    size = sizes[0]
    ips, ips_t = throughput(size, args.bs, args.repeats, args.train_steps)
    ghz = (hw['mhz'] or 0) / 1000
    per_cycle = {'fp32': 64, 'bf16': 128} if hw['avx512f'] else {'fp32': 32, 'bf16': 32}  # AVX2: 2 FMA x 8 lanes x 2
    if not hw['avx512_bf16']: per_cycle['bf16'] = per_cycle['fp32']
    theo = {k: hw['cores'] * ghz * v for k, v in per_cycle.items()}
    f = flops[f'smp_{size[0]}x{size[1]}']
    achieved, frac = {}, {}
    for k, v in ips.items():
        g = v * (f['forward_gflop'] if k.startswith('infer') else f['train_fwd_bwd_gflop'])
        dt = k.split('_')[1]
        achieved[k] = round(g, 1)
        frac[k] = dict(of_measured_peak=round(g / peak[dt], 3), of_theoretical=round(g / theo[dt], 3) if ghz else None)
        print(f"{k:11s} {v:6.1f} images/s = {g:6.1f} GFLOP/s: {frac[k]['of_measured_peak']:.0%} of the measured {dt} peak, "
              f"{frac[k]['of_theoretical'] or 0:.0%} of the theoretical {theo[dt]:.0f} GFLOP/s")
    return finish(args, 'bf16_matmul_and_peak', dict(
        matmul_n=args.n, matmul_gflops={k: round(v, 1) for k, v in mm.items()}, bf16_over_fp32=round(mm['bf16'] / mm['fp32'], 2),
        measured_peak_gflops={k: round(v, 1) for k, v in peak.items()}, blas=blas_info(),
        spec_reference_gflops=dict(fp32=194, bf16=764),
        model_gflop_per_image=flops, throughput_size=list(size), bs=args.bs,
        images_per_s={k: round(v, 2) for k, v in ips.items()}, achieved_gflops=achieved, fraction_of_peak=frac,
        theoretical_peak=dict(gflops={k: round(v, 1) for k, v in theo.items()}, ghz=ghz,
                              clock_implied_by_measured_peak_ghz={k: round(peak[k] / (hw['cores'] * per_cycle[k]), 2) for k in peak}, cores=hw['cores'], flops_per_cycle_per_core=per_cycle,
                              how='cores x clock (/proc/cpuinfo cpu MHz) x FLOPs/cycle/core; fp32: 2 AVX-512 FMA units x 16 fp32 lanes x 2; '
                                  'bf16 (VDPBF16PS): 2 units x 32 bf16 products x 2. A VM reports its nominal clock: boost clocks can make measured exceed it.'),
        details=dict(matmul=mm_t, throughput=ips_t)))

if __name__ == '__main__': main()
