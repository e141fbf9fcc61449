"""What one PyTorch op in a helper thread does to the main thread's forward passes while that thread lives.

A thread that calls a parallel PyTorch op gets its own OpenMP team. While the process has more OpenMP threads
than cores, libgomp stops spin-waiting between parallel regions, and the many short layers of a small model each
pay for waking their team up. Each round times the forward pass (U-Net, bs 16, bf16 where native, channels-last,
like predict) three ways: `clean`; `helper_alive`, with a one-thread pool that has run one `torch.ones(1e5) + 1`
and is still alive; and `after_shutdown`, once that pool has been shut down. The ratio of the best times is
printed. This is why skinseg's `iter_predict` keeps PyTorch out of its reading and finishing threads.
"""
import sys; from pathlib import Path; sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import *
from concurrent.futures import ThreadPoolExecutor
from skinseg.core import build_model, lesion_prob, bf16_supported

def main(args=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument('--size', type=int, nargs=2, default=[96, 128])
    p.add_argument('--bs', type=int, default=16)
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--repeats', type=int, default=6, help='timed forward passes per variant and round (best kept)')
    args = p.parse_args(args)
    if args.quick: args.size, args.bs, args.rounds, args.repeats = [32, 32], 2, 1, 2
    show_hardware()
    torch.manual_seed(0)
    net = build_model(pretrained=False).eval().to(memory_format=torch.channels_last)
    x = torch.randn(args.bs, 3, *args.size).contiguous(memory_format=torch.channels_last)
    bf16 = bf16_supported()
    def forward_ms():
        ts = []
        for _ in range(args.repeats):
            t0 = time.perf_counter(); lesion_prob(net, x, bf16=bf16); ts.append(time.perf_counter() - t0)
        return 1000 * min(ts) / args.bs
    forward_ms()
    ms = {'clean': [], 'helper_alive': [], 'after_shutdown': []}
    for _ in range(args.rounds):
        ms['clean'].append(forward_ms())
        helper = ThreadPoolExecutor(1)
        helper.submit(lambda: torch.ones(100_000) + 1).result()
        ms['helper_alive'].append(forward_ms())
        helper.shutdown(wait=True)
        ms['after_shutdown'].append(forward_ms())
    best = {k: min(v) for k, v in ms.items()}
    slowdown = best['helper_alive'] / best['clean']
    print(f"forward ms/image (best of {args.rounds} rounds x {args.repeats} passes): " + ', '.join(f"{k} {v:.2f}" for k, v in best.items())
          + f"; with the helper thread alive: {slowdown:.2f}x the time")
    return finish(args, 'torch_in_threads', dict(input_size=args.size, bs=args.bs, bf16=bf16, rounds=args.rounds, repeats=args.repeats,
                                                 forward_ms_per_image_best={k: round(v, 3) for k, v in best.items()},
                                                 slowdown_helper_alive=round(slowdown, 3), details=ms))

if __name__ == '__main__': main()
