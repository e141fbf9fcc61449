"""smp.Unet('resnet34') vs fastai's DynamicUnet inside the same fastai Learner: speed and validation score.

Both train from scratch with the same recipe (CE + Dice, AdamW 1e-3, one-cycle, bs 16) on the same
lesion-grouped split of a HAM10000 subset, for the same number of epochs. Prints seconds per training step,
images per second and the per-image validation scores of the last epoch.
Run with tcmalloc: LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
"""
import sys, argparse, json
from pathlib import Path; sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import scratch_dir
import skinseg.core
from skinseg.core import find_data_dir
from skinseg.train import train

if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--limit', type=int, default=240); p.add_argument('--epochs', type=int, default=2)
    p.add_argument('--size', type=int, nargs=2, default=[96, 128]); p.add_argument('--bs', type=int, default=16)
    p.add_argument('--archs', default='smp,fastai'); p.add_argument('--bf16', default='on')
    p.add_argument('--threads', type=int, default=None)
    a = p.parse_args()
    data = find_data_dir()
    if data is None: raise SystemExit("HAM10000 not found under ../shared/data or $SKINSEG_DATA")
    tmp, rows = scratch_dir(), {}
    for arch in a.archs.split(','):
        learn = train(data, tmp/arch, epochs=a.epochs, bs=a.bs, size=tuple(a.size), arch=arch, pretrained=False,
                      limit=a.limit, bf16=a.bf16 == 'on', threads=a.threads, progress=False)
        h = json.loads((tmp/arch/'config.json').read_text())['training']['history']
        ips = sum(r['img_per_s'] for r in h) / len(h)
        rows[arch] = dict(s_per_step=round(a.bs / ips, 3), img_per_s=round(ips, 1), **{k: round(h[-1][k], 4) for k in ('dice', 'iou', 'threshold_jaccard', 'global_iou')})
    print(f"HAM10000 subset of {a.limit} images, {a.size[0]}x{a.size[1]}, bs {a.bs}, {a.epochs} epochs, bf16 {a.bf16}, threads {a.threads}, from scratch")
    print(f"{'arch':<8} {'s/step':>7} {'img/s':>6} {'dice':>6} {'iou':>6} {'threshold_jaccard':>17} {'global_iou':>10}")
    for arch, r in rows.items():
        print(f"{arch:<8} {r['s_per_step']:7.3f} {r['img_per_s']:6.1f} {r['dice']:6.3f} {r['iou']:6.3f} {r['threshold_jaccard']:17.3f} {r['global_iou']:10.3f}")
    print(json.dumps(rows))
