"""bf16 autocast vs float32 in training: speed and the validation Dice/IoU it ends with, on real HAM10000.

Trains the default model (smp ResNet-34 U-Net, channels-last, from scratch, the recipe's optimizer and one-cycle
schedule) with `skinseg.train.train` on the first `--n-images` HAM10000 images (a lesion-grouped 80/20 split of
them) at 96x128, once in float32 and once with bf16 autocast, for each seed, in alternating order. Reports the
training images/s and the last epoch's validation Dice and IoU (per image, at the training size) of every run, the
mean bf16 - fp32 difference, and the spread between seeds of the same precision, which is what a difference
has to exceed to mean anything. The seed sets the split, the initialisation and the data order alike.
"""
import sys; from pathlib import Path; sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import *
import numpy as np
from skinseg.core import find_data_dir, read_model_config

def data_dir():
    "The real HAM10000 folder, or (only when it is absent) a small SYNTHETIC dataset."
    ham = find_data_dir('ham10000')
    if ham: return ham, f'real HAM10000 ({os.path.relpath(ham, REPO)})'
    from skinseg.data import synthetic_dataset
    return synthetic_dataset(scratch_dir()/'synthetic', n=40, size=(48, 64)), 'SYNTHETIC (HAM10000 not found)'

def one_run(data, out, precision, seed, args):
    "Train once; `(images/s over the epochs, last epoch's Dice, IoU, seconds)`."
    from skinseg.train import train
    t0 = time.perf_counter()
    train(data, out, epochs=args.epochs, size=tuple(args.size), limit=args.n_images, pretrained=False, seed=seed,
          bf16=precision == 'bf16', progress=False, encoder=args.encoder)
    hist = read_model_config(out)['training']['history']
    return dict(img_per_s=round(float(np.mean([h['img_per_s'] for h in hist])), 2), dice=hist[-1]['dice'], iou=hist[-1]['iou'],
                seconds=round(time.perf_counter() - t0, 1))

def main(args=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument('--n-images', type=int, default=2000)
    p.add_argument('--epochs', type=int, default=3)
    p.add_argument('--size', type=int, nargs=2, default=[96, 128])
    p.add_argument('--seeds', type=int, nargs='+', default=[42, 43])
    p.add_argument('--encoder', default='resnet34')
    args = p.parse_args(args)
    if args.quick: args.n_images, args.epochs, args.size, args.seeds, args.encoder = 40, 1, [32, 32], [0], 'resnet18'
    show_hardware()
    data, source = data_dir()
    print(f"# data: {source}; {args.n_images} images, {args.epochs} epochs at {args.size[0]}x{args.size[1]}, seeds {args.seeds}")
    runs = {'fp32': {}, 'bf16': {}}
    with tempfile.TemporaryDirectory() as tmp:
        for k, seed in enumerate(args.seeds):
            for precision in (['fp32', 'bf16'] if k % 2 == 0 else ['bf16', 'fp32']):
                r = runs[precision][seed] = one_run(data, Path(tmp)/f'{precision}_{seed}', precision, seed, args)
                print(f"{precision} seed {seed}: {r['img_per_s']:.1f} images/s, Dice {r['dice']:.4f}, IoU {r['iou']:.4f} ({r['seconds']:.0f} s)")
    mean = lambda prec, key: float(np.mean([r[key] for r in runs[prec].values()]))
    spread = lambda prec, key: float(np.ptp([r[key] for r in runs[prec].values()]))
    summary = dict(speedup=round(mean('bf16', 'img_per_s') / mean('fp32', 'img_per_s'), 3),
                   dice_bf16_minus_fp32=round(mean('bf16', 'dice') - mean('fp32', 'dice'), 4),
                   iou_bf16_minus_fp32=round(mean('bf16', 'iou') - mean('fp32', 'iou'), 4),
                   dice_spread_between_seeds={prec: round(spread(prec, 'dice'), 4) for prec in runs})
    print(f"bf16 trains {summary['speedup']:.2f}x as fast as fp32; Dice bf16 - fp32 = {summary['dice_bf16_minus_fp32']:+.4f}, "
          f"IoU {summary['iou_bf16_minus_fp32']:+.4f} (mean over seeds); Dice spread between seeds: {summary['dice_spread_between_seeds']}")
    return finish(args, 'bf16_training', dict(data=source, n_images=args.n_images, epochs=args.epochs, size=args.size, seeds=args.seeds,
                                              encoder=args.encoder, runs=runs, **summary))

if __name__ == '__main__': main()
