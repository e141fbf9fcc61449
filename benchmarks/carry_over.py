"""Issue 15, carry-over to other clinics: train recipe variants (5 epochs, from scratch, default 96x128) and score each on
HAM10000 validation and on a held-out part of ISIC 2017, at threshold 0.5 and at a threshold chosen on other held-out ISIC images.
On this project's 2-core CPU (about 2.4 s per step at 64x96 with two runs side by side) the recorded runs use a smaller
CPU size: 64x96 and a fixed 3,000-image subset of HAM10000's training side (`--size 64 96 --ham-train 3000`).

Splits (the same for every run):
- HAM10000: `split_pairs(find_pairs(ham), valid_pct=0.2, seed=42)`, lesion-grouped: 8,012 train / 2,003 validation.
- ISIC 2017 (2,000 images, one lesion each): shuffled with `numpy.random.default_rng(2017)`; the first 1,000 are
  `isic_test` (reported, never trained on, never used to choose anything), the next 200 `isic_calib` (choose the
  threshold; never trained on), the last 800 `isic_train` (only the `ham+isic` and `isic` variants train on them).

One run per call; each appends its record to benchmarks/results/carry_over.json and keeps the model in runs/carry_over/.
Example: nice -n 5 .venv/bin/python benchmarks/carry_over.py --data ham+isic --aug zoom --isic-repeat 1 --size 64 96 --ham-train 3000 --seed 42 --threads 1
`--table` prints every recorded run; `--by-size DIR...` scores trained runs (or `skinseg train` model folders) on ISIC test per
quarter of lesion size, with the whole-field failures (most of the skin in view marked as lesion);
`--write-split CSV` writes the split of the `skinseg train` two-source runs (3,000 HAM10000 + the 800 ISIC to train).
`--frames` counts the images of each source with a dermoscope's black frame (`skinseg.core.field_of_view`);
`--failures RUN_DIR...` lists the ISIC test images each run scores below IoU 0.65 (0 in threshold Jaccard) and those all fail.
`--rescore MODEL_DIR --adapt-bn` re-estimates the model's BatchNorm statistics on isic_calib's 200 images, their masks unused (AdaBN,
Li et al. 2016: what a clinic could do with unlabelled images of its own), keeps that model beside the original and scores it.
"""
import sys; from pathlib import Path; sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import hardware, command, now_utc, RESULTS, REPO, rel
import os, json, time, random, argparse, fcntl, shutil
import numpy as np, pandas as pd, torch
import torch.nn.functional as F
from scipy.ndimage import distance_transform_edt
from skinseg.core import (find_data_dir, default_config, save_model, read_image, lesion_mask, iter_predict,
                          keep_largest_lesion, field_of_view, load_model, load_resized, to_batch,
                          bf16_supported, IMAGENET_MEAN, IMAGENET_STD, CONFIG_NAME)
from skinseg.basics import atomic_write, SkinsegError
from skinseg.tune import check_not_trained_on
from skinseg.metrics import mask_scores
from skinseg.data import find_pairs, split_pairs, presize, read_split
from skinseg.loaders import seg_datablock, ArrayBatches, SegDL, ColourJitter
from skinseg.train import seg_learner, CEDiceLoss
from skinseg.learner import model_for_training
from fastai.vision.all import aug_transforms, Zoom, Normalize, CSVLogger, ProgressCallback, RandTransform, TensorImage, TensorMask
from fastai.torch_core import set_seed
from torchvision.transforms.functional import gaussian_blur  # after skinseg.core, which sets torchvision up

THRESHOLDS = np.round(np.arange(0.30, 0.951, 0.05), 2)
OUT_JSON = RESULTS/'carry_over.json'

# ---------------------------------------------------------------- data
def splits(isic_n_test=1000, isic_n_calib=200, seed=2017):
    "`(ham pairs with is_valid, isic pairs with part in test/calib/train)`: fixed for every run."
    ham = split_pairs(find_pairs(find_data_dir('ham10000')), valid_pct=0.2, seed=42)
    isic = find_pairs(find_data_dir('ham10000').parent/'isic2017_train')
    order = np.random.default_rng(seed).permutation(len(isic))
    part = np.empty(len(isic), object)
    part[order[:isic_n_test]] = 'test'; part[order[isic_n_test:isic_n_test + isic_n_calib]] = 'calib'
    part[order[isic_n_test + isic_n_calib:]] = 'train'
    return ham, isic.assign(part=part)

def zoom_out() -> list:
    "The library's augmentation plus zoom-out to 0.7 with black (zero) padding, like a dermoscope's dark field of view (`--aug zoom`)."
    return [*aug_transforms(do_flip=True, flip_vert=True, max_rotate=180., min_zoom=0.7, max_zoom=1.15,
                            max_lighting=0., max_warp=0., p_affine=0.75, pad_mode='zeros'), ColourJitter()]

class RandomFOV(RandTransform):
    "A dermoscope's round field of view on half the training images: black outside a circle (radius 0.33-0.47 of the image diagonal, centre moved up to 5%), background in the mask there (`--aug flips+fov`)."
    order, split_idx = 90, 0
    def __init__(self, p:float=0.5, radius=(0.33, 0.47)): super().__init__(p=1.); self.p_img, self.radius = p, radius
    def before_call(self, b, split_idx):
        super().before_call(b, split_idx)
        n, _, h, w = b[0].shape
        yy, xx = torch.meshgrid(torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2, indexing='ij')
        cy, cx = ((torch.rand(2, n) - 0.5) * 0.1 * torch.tensor([[h], [w]])).unbind()
        r = (self.radius[0] + torch.rand(n) * (self.radius[1] - self.radius[0])) * float(np.hypot(h, w))
        inside = (yy - cy[:, None, None]) ** 2 + (xx - cx[:, None, None]) ** 2 <= r[:, None, None] ** 2
        self.keep = inside | (torch.rand(n) >= self.p_img)[:, None, None]
    def encodes(self, x:TensorImage): return x * self.keep[:, None].to(x)
    def encodes(self, x:TensorMask): return x * self.keep.to(x)

def zoom_out_black(p:float=0.5, min_zoom:float=0.5) -> list:
    "Zoom-out to 0.5-1.0 on half the training images, black (zero) padding, mask likewise: small lesions in a wide, dark-bordered field, which HAM10000's lesion-centred crops lack (`--aug flips+zoomout`)."
    return [Zoom(min_zoom=min_zoom, max_zoom=1., p=p, pad_mode='zeros')]

class RandomBlur(RandTransform):
    "Gaussian blur on half the training images, sigma 0.3-1.0 pixels at the training size: the sharpness that changes between cameras (`--aug flips+blur`)."
    order, split_idx = 90, 0
    def __init__(self, p:float=0.5, sigma=(0.3, 1.0)): super().__init__(p=1.); self.p_img, self.sigma = p, sigma
    def encodes(self, x:TensorImage):
        out = x.clone()
        for i in np.flatnonzero(torch.rand(x.shape[0]).numpy() < self.p_img):
            s = self.sigma[0] + float(torch.rand(())) * (self.sigma[1] - self.sigma[0])
            out[i] = gaussian_blur(x[i].as_subclass(torch.Tensor), kernel_size=2 * int(np.ceil(3 * s)) + 1, sigma=s)
        return out

def camera_colour() -> ColourJitter:
    "Stronger per-image colour jitter than the library's standard set (brightness and contrast 0.2, saturation 0.3, hue 0.05 of a turn, on 3 images in 4): the illumination and camera colour that change between clinics (`--aug flips+colour`)."
    return ColourJitter(brightness=0.2, contrast=0.2, saturation=0.3, hue=0.05, p=0.75)

def shades_of_grey(img:np.ndarray, p:int=6) -> np.ndarray:
    "Shades-of-grey colour constancy (Finlayson & Trezzi 2004; used by the winning ISIC 2019 entry, Gessert et al. 2020): scale each channel so the image's p-norm illuminant is grey."
    x = img.astype(np.float32)
    e = np.power(np.power(x, p).mean((-3, -2), keepdims=True), 1 / p)
    e = e / np.sqrt((e ** 2).sum(-1, keepdims=True)) * np.sqrt(3)
    return np.clip(x / np.maximum(e, 1e-6), 0, 255).astype(np.uint8)

def dataloaders(df, size, bs, aug, mean, std, seed, colour='none'):
    "Like `skinseg.loaders.seg_dataloaders`, with the batch augmentation, the normalisation stats and colour constancy as options."
    df = df.reset_index(drop=True)
    arrays = presize(df, size)
    if colour == 'sog': arrays = (shades_of_grey(arrays[0]), arrays[1])
    # 'library' and 'flips' are skinseg's own (seg_augment); the flips runs recorded before 2026-12-01 11:30 UTC used an own transform with the same draw
    block = seg_datablock(df, size, 'flips' if aug.startswith('flips') else {'library': 'standard'}.get(aug, False), arrays)
    keep = [t for t in block.batch_tfms if not isinstance(t, Normalize)]
    extra = {'zoom': zoom_out(), 'flips+fov': [RandomFOV()], 'flips+blur': [RandomBlur()], 'flips+zoomout': zoom_out_black(),
             'flips+colour': [camera_colour()]}.get(aug, [])
    block.batch_tfms = keep + extra + [Normalize.from_stats(mean, std, cuda=False)]
    dls = block.dataloaders(df, bs=bs, num_workers=0, dl_type=SegDL)
    for dl in dls.loaders: ArrayBatches(dl, *arrays)
    dls.train.rng = random.Random(seed)
    return dls, arrays

class PooledCEDiceLoss(CEDiceLoss):
    "Cross-entropy plus one soft Dice over all the batch's pixels (pooled), instead of per image."
    def forward(self, pred, targ):
        pred, targ = pred.as_subclass(torch.Tensor).float(), targ.as_subclass(torch.Tensor).long()
        p, t = pred.softmax(1)[:, 1], (targ == 1).float()
        dice = (2 * (p * t).sum() + self.smooth) / (p.sum() + t.sum() + self.smooth)
        return F.cross_entropy(pred, targ) + self.dice_weight * (1 - dice)

class BoundaryCEDiceLoss(CEDiceLoss):
    "CE + per-image Dice + the boundary loss of Kervadec et al. 2019 (MIDL): the mean of the lesion probability times the ground truth's signed distance to its border (negative inside, divided by the image diagonal), so lesion drawn far outside the true border costs more."
    def __init__(self, boundary_weight:float=1., **kw): super().__init__(**kw); self.boundary_weight = boundary_weight
    def forward(self, pred, targ):
        t = targ.as_subclass(torch.Tensor).cpu().numpy() == 1
        phi = np.stack([signed_distance(m) for m in t]) / np.hypot(*t.shape[-2:])
        p = pred.as_subclass(torch.Tensor).float().softmax(1)[:, 1]
        return super().forward(pred, targ) + self.boundary_weight * (p * torch.from_numpy(phi).to(p)).mean()

def signed_distance(m:np.ndarray) -> np.ndarray:
    "Euclidean distance in pixels to the border of boolean mask `m`: positive outside, negative inside; zeros for an empty or full mask."
    if m.all() or not m.any(): return np.zeros(m.shape, np.float32)
    return (distance_transform_edt(~m) - distance_transform_edt(m)).astype(np.float32)

# ---------------------------------------------------------------- scoring
def score(model_dir, df, thresholds=THRESHOLDS, bs=32, tta=False, colour='none', postprocess=False, others=()) -> dict:
    "skinseg's `mask_scores` per image and threshold (arrays of images x thresholds; `px`: the image's pixel count) at the images' own size, via `iter_predict`; `postprocess` keeps each mask's largest lesion with its holes filled; `others`: more model folders whose probability maps are averaged with `model_dir`'s (an ensemble)."
    rows = []
    thr = torch.tensor(thresholds, dtype=torch.float32)[:, None, None]
    images = list(df.image) if colour == 'none' else [shades_of_grey(read_image(f)) for f in df.image]
    streams = [iter_predict(images, d, bs=bs, return_prob=True, tta=tta) for d in (model_dir, *others)]
    for lms, mpath in zip(zip(*streams), df['mask']):
        g = torch.from_numpy(lesion_mask(mpath))
        p = torch.from_numpy(np.mean([lm.prob for lm in lms], 0))[None] > thr
        if postprocess: p = torch.from_numpy(np.stack([keep_largest_lesion(m) for m in p.numpy()]))
        rows.append(dict(mask_scores(p, g.expand_as(p)), px=torch.full((len(thresholds),), g.numel())))
    return {k: np.stack([r[k].numpy() for r in rows]) for k in ('dice', 'iou', 'threshold_jaccard', 'area_ratio', 'pred_px', 'gt_px', 'px')}

def summarize(s, j) -> dict:
    "Per-image Dice, IoU, threshold Jaccard and median predicted/true area at threshold column `j`."
    c = {k: v[:, j] for k, v in s.items()}
    return dict(n=len(c['dice']), dice=round(float(c['dice'].mean()), 4), iou=round(float(c['iou'].mean()), 4),
                threshold_jaccard=round(float(c['threshold_jaccard'].mean()), 4), area_ratio_median=round(float(np.median(c['area_ratio'])), 3),
                too_large_share=round(float((c['pred_px'] > c['gt_px']).mean()), 3),
                pred_area_mean=round(float(c['pred_px'].mean()), 1), true_area_mean=round(float(c['gt_px'].mean()), 1))

def append_result(rec, path=OUT_JSON):
    "Append `rec` to the JSON list in `path`, holding a lock on its folder: two runs side by side can finish at the same moment."
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = os.open(path.parent, os.O_RDONLY)  # the folder, not a lock file: nothing is left behind
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        recs = json.loads(path.read_text()) if path.is_file() else []
        atomic_write(path, lambda p: p.write_text(json.dumps(recs + [rec], indent=1, default=str) + '\n'))
    finally: os.close(folder)

def by_lesion_size(model_dir:Path, te:pd.DataFrame) -> dict:
    "ISIC test (`te`) Dice, median predicted/true area and whole-field failures at 0.5 per quarter of true lesion size (share of the image), for one trained model."
    cfg = json.loads((model_dir/CONFIG_NAME).read_text())
    args = cfg['training'].get('args') or dict(cfg['training']['run'], colour='none')  # a run of this script, or a `skinseg train` model
    s = score(model_dir, te, thresholds=[0.5], colour=args.get('colour', 'none'))
    d = pd.DataFrame(dict(frac=s['gt_px'][:, 0] / s['px'][:, 0], dice=s['dice'][:, 0], ratio=s['area_ratio'][:, 0]))
    d['whole_field'] = (d.ratio > 3) & (d.dice < 0.5)  # most of the skin in view marked: the lesion is lost in it
    d['quarter'] = pd.qcut(d.frac, 4, labels=['smallest', 'small', 'large', 'largest'])
    q = d.groupby('quarter', observed=True).agg(lesion_share_median=('frac', 'median'), dice=('dice', 'mean'),
                                               area_ratio_median=('ratio', 'median'), whole_field=('whole_field', 'sum'),
                                               n=('dice', 'size')).round(3)
    rescored = [r['variant'] for r in json.loads(OUT_JSON.read_text()) if r.get('model_dir') == rel(model_dir)] if OUT_JSON.is_file() else []
    variant = cfg['training'].get('variant') or (rescored or [f'skinseg_train_{model_dir.name}'])[-1]  # a rescored model keeps its name there
    return dict(benchmark='carry_over_by_size', variant=variant, seed=args['seed'],
                model_dir=rel(model_dir), command=command(), when_utc=now_utc(), threshold=0.5, data='isic_test (1,000 ISIC 2017 images)',
                whole_field_rule='predicted area over 3 times the true area and Dice below 0.5',
                whole_field=int(d.whole_field.sum()), dice=round(float(d.dice.mean()), 4),
                dice_without_whole_field=round(float(d.dice[~d.whole_field].mean()), 4),
                by_quarter=q.reset_index().to_dict('records'))

def failures(model_dirs:list, te:pd.DataFrame) -> dict:
    "The ISIC test images each trained run scores below the ISIC threshold (IoU 0.65, counted as 0 by threshold Jaccard) at 0.5, and those all runs fail."
    ious, runs = [], []
    for d in model_dirs:
        s = score(d, te, thresholds=[0.5])
        ious.append(s['iou'][:, 0]); runs.append(dict(model_dir=rel(d), below=int((s['iou'][:, 0] < 0.65).sum())))
    iou = np.stack(ious); gt = s['gt_px'][:, 0] / s['px'][:, 0]; all_fail = (iou < 0.65).all(0)
    return dict(benchmark='carry_over_failures', command=command(), when_utc=now_utc(), threshold=0.5, iou_below=0.65,
                data='isic_test (1,000 ISIC 2017 images)', runs=runs, failed_by_all=int(all_fail.sum()),
                failed_by_any=int((iou < 0.65).any(0).sum()), failed_by_all_ids=te.image_id[all_fail].tolist(),
                failed_by_all_mean_iou=round(float(iou.mean(0)[all_fail].mean()), 3),
                lesion_share_median=dict(failed_by_all=round(float(np.median(gt[all_fail])), 3), all_images=round(float(np.median(gt)), 3)),
                share_of_a_runs_failures_failed_by_all=round(float(all_fail.sum() / (iou < 0.65).sum(1).mean()), 3))

def table(path=OUT_JSON) -> str:
    "A markdown table of every run in the results file, at 0.5 and at the chosen threshold, and the spread between seeds."
    recs = [r for r in json.loads(Path(path).read_text()) if not r.get('quick')]
    rows = ['| variant | seed | thr | HAM val Dice / IoU / thr-Jacc | ISIC test Dice / IoU / thr-Jacc / area ratio | train min |', '|---|---|---|---|---|---|']
    for r in recs:
        for label, key in (('0.5', 'at_05'), (f"{r['chosen_threshold']:.2f}", 'at_chosen')):
            h, t = r[key]['ham_val'], r[key]['isic_test']
            rows.append(f"| {r['variant']} | {r['seed']} | {label} | {h['dice']:.4f} / {h['iou']:.4f} / {h['threshold_jaccard']:.4f} | "
                        f"{t['dice']:.4f} / {t['iou']:.4f} / {t['threshold_jaccard']:.4f} / {t['area_ratio_median']:.3f} | {(r['train_s'] or 0)/60:.1f} |")
    rows += ['', '| variant | thr | n seeds | HAM IoU mean (range) | ISIC Dice mean (range) | ISIC thr-Jacc mean (range) |', '|---|---|---|---|---|---|']
    for v in dict.fromkeys(r['variant'] for r in recs):
        rs = [r for r in recs if r['variant'] == v]
        for label, key in (('0.5', 'at_05'), ('chosen', 'at_chosen')):
            f = lambda d, m: [r[key][d][m] for r in rs]
            fmt = lambda xs: f"{np.mean(xs):.4f} ({min(xs):.4f}-{max(xs):.4f}, spread {max(xs)-min(xs):.4f})"
            rows.append(f"| {v} | {label} | {len(rs)} | {fmt(f('ham_val', 'iou'))} | {fmt(f('isic_test', 'dice'))} | {fmt(f('isic_test', 'threshold_jaccard'))} |")
    return '\n'.join(rows)

RESCORE_OWN = ('rescore', 'ensemble', 'tta', 'postprocess', 'adapt_bn', 'name', 'threads', 'limit')  # options of a --rescore call itself; the rest come from the model

def ham_subset(ham_tr:pd.DataFrame, n:int) -> pd.DataFrame:
    "The fixed `--ham-train` subset: the first `n` of a numpy default_rng(0) permutation of HAM10000's training side, in file order."
    return ham_tr.iloc[np.sort(np.random.default_rng(0).permutation(len(ham_tr))[:n])]

def cli_split(model_dir:Path, config:dict) -> dict:
    "What a `skinseg train` model trained and validated on, from its split.csv, for the record of `--rescore`."
    valid = read_split(model_dir/'split.csv').is_valid
    return dict(model_split_csv=rel(model_dir/'split.csv'), n_train=int((~valid).sum()), n_valid=int(valid.sum()), input_size=config['input_size'])

def write_split(path:Path, ham_train:int=3000) -> Path:
    "The split CSV of the `skinseg train` two-source runs: `ham_train` HAM10000 + isic_train to train; HAM10000 validation + isic_calib to validate."
    ham, isic = splits()
    parts = [ham_subset(ham[~ham.is_valid], ham_train).assign(is_valid=False), ham[ham.is_valid], isic[isic.part == 'train'].assign(is_valid=False), isic[isic.part == 'calib'].assign(is_valid=True)]
    pd.concat(parts)[['image_id', 'is_valid']].to_csv(path, index=False)
    return path

def dark_frames() -> dict:
    "How many images of each source show a dermoscope's black frame, as `predict` finds it (`skinseg.core.field_of_view`)."
    rec = dict(benchmark='carry_over_frames', when_utc=now_utc(), command=command(),
               rule='field_of_view(image) with its defaults: near-black (brightest channel <= 24) region holding a corner, >= 1% of the image')
    for name, df in zip(('ham10000', 'isic2017_train'), splits()):
        out = np.array([1 - field_of_view(read_image(f)).mean() for f in df.image])
        rec[name] = dict(n=len(out), with_frame_share=round(float((out > 0).mean()), 4),
                         frame_area_median_when_present=round(float(np.median(out[out > 0])), 3) if (out > 0).any() else None)
    return rec

# ---------------------------------------------------------------- one run
def adapt_bn(model_dir:Path, images:list, out:Path, bs:int=16) -> Path:
    "A copy of `model_dir` in `out` whose BatchNorm running statistics are re-estimated on `images` (no labels; AdaBN): a cumulative average over them, in training mode, no gradients."
    shutil.copytree(model_dir, out, dirs_exist_ok=True)  # its split.csv and log.csv too
    net, cfg = load_model(model_dir)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d): m.reset_running_stats(); m.momentum = None
    net.train()
    with torch.no_grad():
        for b in range(0, len(images), bs):
            net(to_batch([load_resized(f, tuple(cfg['input_size']))[0] for f in images[b:b + bs]], cfg['mean'], cfg['std']))
    cfg['training']['adapted_bn'] = f'BatchNorm statistics re-estimated on {len(images)} unlabelled images (isic_calib), {now_utc()}'
    return save_model(net.eval(), out, cfg)

def main():
    if '--frames' in sys.argv:  # --frames: share of each source's images with a black frame, appended to carry_over_frames.json
        rec = dark_frames(); append_result(rec, RESULTS/'carry_over_frames.json'); print(json.dumps(rec, indent=1)); return
    if '--table' in sys.argv: print(table()); return
    if '--by-size' in sys.argv:  # --by-size DIR...: ISIC test scores per quarter of lesion size, appended to carry_over_by_size.json
        te = splits()[1].query("part == 'test'")  # DIR: a run of this script (its model/), or a `skinseg train` model folder
        for d in sys.argv[sys.argv.index('--by-size') + 1:]:
            rec = by_lesion_size(Path(d)/'model' if (Path(d)/'model').is_dir() else Path(d), te); append_result(rec, RESULTS/'carry_over_by_size.json'); print(json.dumps(rec, indent=1))
        return
    if '--failures' in sys.argv:  # --failures RUN_DIR...: ISIC test images below IoU 0.65 per run and in all, appended to carry_over_failures.json
        rec = failures([Path(d)/'model' for d in sys.argv[sys.argv.index('--failures') + 1:]], splits()[1].query("part == 'test'"))
        append_result(rec, RESULTS/'carry_over_failures.json'); print(json.dumps({k: v for k, v in rec.items() if k != 'failed_by_all_ids'}, indent=1))
        return
    if '--write-split' in sys.argv: print(write_split(Path(sys.argv[sys.argv.index('--write-split') + 1]))); return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', default='ham', choices=['ham', 'ham+isic', 'isic'], help='train on HAM10000 train, also on isic_train, or on isic_train alone')
    ap.add_argument('--isic-repeat', type=int, default=2, help='times each isic_train image appears per epoch (ham+isic, isic)')
    ap.add_argument('--train-on-calib', action='store_true',
                    help='also train on isic_calib (1,000 ISIC images to train; isic_test stays unseen); no threshold is chosen then: 0.5 stays')
    ap.add_argument('--aug', default='library', choices=['library', 'zoom', 'flips', 'flips+fov', 'flips+blur', 'flips+zoomout', 'flips+colour'],
                    help="skinseg's standard augmentation; it with zoom-out; flips only; flips with a round black field of view, a Gaussian blur or a zoom-out to 0.5-1.0 on half the images, or with a stronger colour jitter")
    ap.add_argument('--norm', default='imagenet', choices=['imagenet', 'dataset'], help="ImageNet mean/std, or the training images' own")
    ap.add_argument('--colour', default='none', choices=['none', 'sog'], help='shades-of-grey colour constancy on every image, in training and scoring')
    ap.add_argument('--loss', default='per_image', choices=['per_image', 'pooled', 'boundary', 'lovasz'],
                    help='Dice term of CE + Dice (per image or pooled over the batch), per-image CE + Dice + boundary loss, or CE + per-image Lovasz hinge')
    ap.add_argument('--seed', type=int, default=42)
    ap.add_argument('--pretrained', action='store_true', help="the recipe's ImageNet encoder, downloaded (every run recorded so far is from scratch: no download here)")
    ap.add_argument('--weights', default=None, help='the ImageNet encoder from a local file (torchvision resnet34-b627a593.pth) instead of the download')
    ap.add_argument('--epochs', type=int, default=5)
    ap.add_argument('--size', type=int, nargs=2, default=[96, 128])
    ap.add_argument('--bs', type=int, default=16)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--ham-train', type=int, default=None,
                    help='train on this many HAM10000 training images (a fixed random subset, numpy seed 0; the same for every run); '
                         'validation and ISIC test stay whole')
    ap.add_argument('--limit', type=int, default=None, help='quick check: use only this many images of each set')
    ap.add_argument('--name', default=None)
    ap.add_argument('--rescore', type=Path, default=None, help='score a trained model folder (no training), e.g. with --tta: a run of this script, or a `skinseg train` model whose split.csv is the seed-42 split')
    ap.add_argument('--tta', action='store_true', help='score with flip test-time augmentation')
    ap.add_argument('--postprocess', action='store_true', help='score with only the largest lesion kept, its holes filled (skinseg.core.keep_largest_lesion)')
    ap.add_argument('--adapt-bn', action='store_true', help="with --rescore: first re-estimate the model's BatchNorm statistics on isic_calib's images, unlabelled (AdaBN)")
    ap.add_argument('--ensemble', type=Path, nargs='+', default=[], help='with --rescore: more model folders (other seeds of the same variant) whose probability maps are averaged with its model\'s')
    a = ap.parse_args()
    if a.ensemble and a.rescore is None: sys.exit('--ensemble needs --rescore MODEL_DIR: the first model of the ensemble')
    for d in ([a.rescore] if a.rescore is not None else []) + a.ensemble:
        if not (d/CONFIG_NAME).is_file(): sys.exit(f"{d}: no {CONFIG_NAME}, not a model folder (this script keeps each run's model in RUN_DIR/model)")
    if a.rescore is not None:
        cfg = json.loads((a.rescore/CONFIG_NAME).read_text())
        for k, v in cfg['training'].get('args', {}).items():  # a `skinseg train` model has no 'args': it is scored as it is
            if k not in RESCORE_OWN: setattr(a, k, v)
    torch.set_num_threads(a.threads)
    variant = a.name or (f"{a.data}_{a.aug}_{a.norm}_{a.loss}" + ('_sog' if a.colour == 'sog' else '') + (f"_isicx{a.isic_repeat}" if 'isic' in a.data else '') + ('_calibtrained' if a.train_on_calib else '')
                         + f"_{a.size[0]}x{a.size[1]}" + (f"_ham{a.ham_train}" if a.ham_train and 'ham' in a.data else '') + (f"_{a.epochs}ep" if a.epochs != 5 else '')
                         + (f"_lr{a.lr:g}" if a.lr != 1e-3 else '') + (f"_bs{a.bs}" if a.bs != 16 else '')
                         + ('_pretrained' if a.pretrained or a.weights else '') + ('_bf16' if bf16_supported('cpu') else ''))  # bfloat16 training is not compared as if float32
    out = REPO/'runs'/'carry_over'/f'{variant}_s{a.seed}' if not a.limit else REPO/'runs'/'carry_over_quick'/f'{variant}_s{a.seed}'
    if a.rescore is not None: out, variant = a.rescore.parent, cfg['training'].get('variant') or a.name or f'skinseg_train_{a.rescore.name}'
    if a.ensemble: variant += f'+ensemble{1 + len(a.ensemble)}'
    if a.tta: variant += '+tta'
    if a.postprocess: variant += '+largest'
    if a.adapt_bn: variant += '+adabn'
    out.mkdir(parents=True, exist_ok=True)
    size = tuple(a.size)
    ham, isic = splits()
    ham_tr, ham_va = ham[~ham.is_valid], ham[ham.is_valid]
    isic_te, isic_ca, isic_tr = (isic[isic.part == p] for p in ('test', 'calib', 'train'))
    if a.ham_train: ham_tr = ham_subset(ham_tr, a.ham_train)
    if a.limit: ham_tr, ham_va, isic_te, isic_ca, isic_tr = (d.iloc[:a.limit] for d in (ham_tr, ham_va, isic_te, isic_ca, isic_tr))
    if getattr(a, 'train_on_calib', False): isic_tr = pd.concat([isic_tr, isic_ca])
    train_df = ham_tr.assign(source='ham') if 'ham' in a.data else ham_tr.iloc[:0].assign(source='ham')
    if 'isic' in a.data: train_df = pd.concat([train_df] + [isic_tr.assign(source='isic')] * a.isic_repeat)
    monitor = ham_va.iloc[:400]  # per-epoch log only; the model kept is the last epoch's, chosen on nothing
    df = pd.concat([train_df.assign(is_valid=False), monitor.assign(is_valid=True, source='ham')], ignore_index=True)

    if a.rescore is not None:
        scored = list(pd.concat([ham_va, isic_te, isic_ca]).image)  # HAM10000 validation, ISIC test and calibration
        try:
            for d in (a.rescore, *a.ensemble): check_not_trained_on(d, scored)
        except SkinsegError as e: sys.exit(str(e))
        model_dir, config = a.rescore, cfg
        train_s = sum(h.get('epoch_s') or 0 for h in cfg['training'].get('history') or []) or None  # a `skinseg train` model's own timing, from its config
        if a.adapt_bn:
            if a.ensemble: sys.exit('--adapt-bn adapts one model: leave out --ensemble')
            model_dir = adapt_bn(a.rescore, list(isic_ca.image), a.rescore.parent/f'{a.rescore.name}_adabn')
            config = json.loads((model_dir/CONFIG_NAME).read_text())
        mean, std = tuple(cfg['mean']), tuple(cfg['std'])
    else: model_dir, config, train_s, mean, std = train_model(a, variant, out, size, df, train_df)
    evaluate(a, variant, out, model_dir, config, train_s, mean, std, ham_tr, ham_va, isic_te, isic_ca, isic_tr)

def train_model(a, variant, out, size, df, train_df):
    set_seed(a.seed)
    if a.norm == 'dataset':
        imgs = presize(train_df.drop_duplicates('image_id').reset_index(drop=True), size)[0]
        if a.colour == 'sog': imgs = shades_of_grey(imgs)
        mean = tuple(float(v) for v in imgs.reshape(-1, 3).mean(0) / 255); std = tuple(float(v) for v in imgs.reshape(-1, 3).std(0) / 255)
    else: mean, std = IMAGENET_MEAN, IMAGENET_STD
    set_seed(a.seed)
    dls, _ = dataloaders(df, size, a.bs, a.aug, mean, std, a.seed, a.colour)
    model, init = model_for_training('smp', pretrained=a.pretrained, weights=a.weights, size=size)  # random unless asked for
    if (a.pretrained or a.weights) and not init.startswith('ImageNet'): raise SystemExit(f'carry_over.py: --pretrained asked for, but the encoder is {init}')
    bf16 = bf16_supported('cpu')
    learn = seg_learner(dls, model, lr=a.lr, wd=0., bf16=bf16, channels_last=True, path=out, loss='ce_lovasz' if a.loss == 'lovasz' else 'ce_dice')
    if a.loss == 'pooled': learn.loss_func = PooledCEDiceLoss()
    if a.loss == 'boundary': learn.loss_func = BoundaryCEDiceLoss()
    learn.remove_cb(ProgressCallback)
    t0 = time.time()
    learn.fit_one_cycle(a.epochs, a.lr, cbs=[CSVLogger('log.csv')])
    train_s = time.time() - t0
    config = default_config(arch='smp', encoder='resnet34', input_size=list(size), mean=list(mean), std=list(std), threshold=0.5,
        training=dict(script=rel(__file__), variant=variant, args=vars(a), n_train_rows=len(train_df),
                      n_train_images=int(train_df.image_id.nunique()), epochs=a.epochs, bs=a.bs, lr=a.lr,
                      optimizer='AdamW (fastai Adam, decoupled wd=0)', schedule='one_cycle', encoder_init=init, bf16=bf16,
                      kept='last epoch'))
    model_dir = out/'model'
    save_model(learn.model, model_dir, config)
    return model_dir, config, train_s, mean, std

def evaluate(a, variant, out, model_dir, config, train_s, mean, std, ham_tr, ham_va, isic_te, isic_ca, isic_tr):

    t1 = time.time()
    res = {name: score(model_dir, d, tta=a.tta, colour=getattr(a, 'colour', 'none'), postprocess=a.postprocess, others=a.ensemble) for name, d in (('ham_val', ham_va), ('isic_test', isic_te), ('isic_calib', isic_ca))}
    eval_s = time.time() - t1
    calib_dice = [summarize(res['isic_calib'], j)['dice'] for j in range(len(THRESHOLDS))]
    jbest = int(np.argmax(calib_dice)); thr = float(THRESHOLDS[jbest]); j05 = int(np.flatnonzero(THRESHOLDS == 0.5)[0])
    calib_seen = getattr(a, 'train_on_calib', False)
    if calib_seen: jbest, thr = j05, 0.5  # a threshold chosen on images trained on would be chosen on nothing fair
    if a.rescore is None and not calib_seen:  # store the chosen threshold in the model's config
        config['threshold'] = thr
        config['training']['threshold_chosen_on'] = f'isic_calib ({len(isic_ca)} ISIC 2017 images not trained on): max mean per-image Dice over {THRESHOLDS.tolist()}'
        (model_dir/CONFIG_NAME).write_text(json.dumps(config, indent=2, default=str))
    by_cli = a.rescore is not None and 'args' not in config['training']  # a `skinseg train` model: its own options and split
    seed = '+'.join(str(json.loads((d/CONFIG_NAME).read_text())['training'].get('args', {}).get('seed', '?')) for d in (model_dir, *a.ensemble)) if a.ensemble else a.seed
    rec = dict(benchmark='carry_over', variant=variant, seed=seed, quick=bool(a.limit), command=command(),
               when_utc=now_utc(), hardware=hardware(), model_dir=rel(model_dir),
               options=vars(a) if not by_cli else {k: v for k, v in vars(a).items() if k in RESCORE_OWN + ('seed',)},
               mean=list(mean), std=list(std),
               split=cli_split(model_dir, config) if by_cli else dict(ham='split_pairs(find_pairs(ham10000), valid_pct=0.2, seed=42): lesion-grouped',
                          isic='numpy default_rng(2017) permutation of the 2,000 ISIC 2017 images: 1,000 test, 200 calib, 800 train',
                          n_ham_train=len(ham_tr) if 'ham' in a.data else 0, ham_train_subset='numpy default_rng(0) permutation of the 8,012, first N' if a.ham_train and 'ham' in a.data else None, n_ham_val=len(ham_va), n_isic_test=len(isic_te), n_isic_calib=len(isic_ca),
                          n_isic_train_used=len(isic_tr) if 'isic' in a.data else 0, isic_calib_trained_on=calib_seen),
               train_s=train_s and round(train_s, 1), **(dict(trained_on=config['training'].get('machine') or 'not recorded by the skinseg train of the time',
                                                      epochs=len(config['training'].get('history') or [])) if by_cli else {}),
               tta=a.tta, postprocess=a.postprocess, eval_s=round(eval_s, 1),
               epoch_log=pd.read_csv(next(f for f in (out/'log.csv', model_dir/'log.csv') if f.is_file())).to_dict('records'),
               chosen_threshold=thr, threshold_chosen_on='none: isic_calib was trained on; 0.5 kept' if calib_seen else 'isic_calib (200 ISIC 2017 images, not trained on, not in isic_test): max mean Dice',
               calib_dice_by_threshold=dict(zip(THRESHOLDS.tolist(), calib_dice)),
               at_05={k: summarize(v, j05) for k, v in res.items()},
               at_chosen={k: summarize(v, jbest) for k, v in res.items()},
               isic_test_dice_by_threshold={float(t): summarize(res['isic_test'], j)['dice'] for j, t in enumerate(THRESHOLDS)},
               ham_val_iou_by_threshold={float(t): summarize(res['ham_val'], j)['iou'] for j, t in enumerate(THRESHOLDS)})
    if a.limit: (out/'result.json').write_text(json.dumps(rec, indent=1, default=str))
    else: append_result(rec)
    print(json.dumps({k: rec[k] for k in ('variant', 'seed', 'train_s', 'chosen_threshold', 'at_05', 'at_chosen')}, indent=1))

if __name__ == '__main__': main()
