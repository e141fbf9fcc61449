"""`skinseg.core.predict` end to end on 600x450 dermoscopy images vs the raw model forward on prepared tensors.

`forward` runs `lesion_prob` (model + softmax) alone, on all of PyTorch's threads, with the model exactly as predict
runs a model folder (where bf16 is native: the bfloat16 copy with the BatchNorms folded in), on the very tensors
predict builds (decoded, resized, normalised, in the memory layout predict gives them); `forward_nchw` on contiguous NCHW
copies, to show the layout effect. `predict_files` takes JPEG paths (decode included), `predict_arrays` decoded
600x450 arrays, both with predict's default two batch streams; the `_1stream` variants run one batch at a time.
Prints the throughput ratios (goal >= 0.90), the ceiling the per-image work outside the model allows, single-image
latency p50/p95, and a per-stage breakdown of the pipeline run stage by stage in one thread (read+resize,
normalise, forward, upsample+threshold), so a shortfall can be traced to its stage. Variants are interleaved in
one process; medians and bests of repeats, warm-up excluded. `--model random --size 256 256` times a random-weight
U-Net at the recipe's input size instead of the trained model.
"""
import sys; from pathlib import Path; sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import *
import time, numpy as np, torch
from PIL import Image
import skinseg.core as core
from skinseg.core import find_data_dir, build_model, default_config, save_model, predict, read_image, lesion_prob, bf16_supported

BF16 = bf16_supported()  # predict's default: bfloat16 where the CPU runs it natively; both sides use the same

REAL_MODEL = REPO/'models'/'ham10000_96x128'

def get_images(n:int):
    "`n` 600x450 image files: the real full-resolution HAM10000 sample repeated, or synthetic ones if it is absent."
    d = find_data_dir('ham10000_fullres_sample')
    files = sorted(d.rglob('*.jpg')) if d else []
    if files: source = f'real: the {len(files)} HAM10000 originals (600x450) of {d.name}, repeated'
    else:
        tmp = scratch_dir(); rng = np.random.default_rng(0)
        for i in range(5):
            Image.fromarray(rng.integers(0, 255, (450, 600, 3), dtype=np.uint8)).save(tmp/f'synthetic_{i}.jpg', quality=90)
        files, source = sorted(tmp.glob('*.jpg')), 'SYNTHETIC 600x450 noise JPEGs (real sample not found)'
    return [files[i % len(files)] for i in range(n)], source

def model_folder(model_dir, size):
    "The trained model's folder if present (and not 'random'), else a random-weight smp U-Net at `size` saved to a temp folder (same speed)."
    if model_dir and model_dir != 'random' and Path(model_dir).is_dir(): return model_dir, f'trained model {rel(model_dir)}'
    torch.manual_seed(0)
    folder = save_model(build_model(pretrained=False), scratch_dir()/'random_unet', default_config(input_size=list(size)))
    return folder, f'random-weight smp U-Net (ResNet-34), input {size[0]}x{size[1]}'

def model_predict_runs(folder):
    "`(model, config)` exactly as predict runs a model folder: the bf16 copy with BatchNorms folded in where bf16 is native."
    net, cfg, _ = core.inference_model(folder, 'cpu', BF16)
    return net, cfg

def normalise(resized, cfg):
    "The float batch predict feeds the model, from uint8 arrays at the input size."
    return core.to_batch(resized, cfg['mean'], cfg['std'])

load_resized, full_size = core.load_resized, lambda p, hw, thr: core.prob_to_mask(p, hw, thr)[0]

def stage_times(items, model_cfg, bs):
    "Seconds each stage of `predict` takes on `items`, run one stage after the other, all but the forward in one thread."
    net, cfg = model_cfg
    size = tuple(cfg['input_size'])
    t = dict(read_resize=0., normalise=0., forward_softmax=0., upsample_threshold=0.)
    for i in range(0, len(items), bs):
        t0 = time.perf_counter(); loaded = [load_resized(p, size) for p in items[i:i+bs]]
        t1 = time.perf_counter(); x = normalise([a for a, _ in loaded], cfg)
        t2 = time.perf_counter(); probs = lesion_prob(net, x, bf16=BF16).numpy()
        t3 = time.perf_counter(); [full_size(p, hw, cfg['threshold']) for p, (_, hw) in zip(probs, loaded)]
        t4 = time.perf_counter()
        for k, a, b in zip(t, [t0, t1, t2, t3], [t1, t2, t3, t4]): t[k] += b - a
    return t

def ceiling(stage_ms:dict, cores:int) -> float:
    "The best ratio to the forward a pipeline can reach when the single-threaded work outside the model runs on all `cores` beside it."
    outside = stage_ms['read_resize'] + stage_ms['normalise'] + stage_ms['upsample_threshold']
    return stage_ms['forward_softmax'] / (stage_ms['forward_softmax'] + outside / cores)

def _draft_resized(path, size, factor):
    "A JPEG decoded at the smallest DCT scale no smaller than `factor` x the input size (None: full), resized to `size`."
    h, w = size
    img = Image.open(path)
    if factor is not None: img.draft('RGB', (factor * w, factor * h))
    return np.asarray(img.convert('RGB').resize((w, h), Image.BILINEAR)), img.size

def draft_study(files, model_cfg, repeats):
    "Decode+resize time per image at JPEG draft scales, the input's difference from a full decode, and Dice vs the masks."
    net, cfg = model_cfg
    size = tuple(cfg['input_size'])
    files = sorted(set(files))
    masks = {f: f.parent.parent/'HAM10000_segmentations_lesion_tschandl'/f'{f.stem}_segmentation.png' for f in files}
    out = {}
    for name, factor in (('full_decode', None), ('draft_4x_input', 4), ('draft_2x_input', 2), ('draft_1x_input', 1)):
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter(); xs = [_draft_resized(f, size, factor) for f in files]; ts.append((time.perf_counter() - t0) / len(files))
        ref = [_draft_resized(f, size, None)[0] for f in files]
        row = dict(ms_per_image=round(1000 * median(ts), 3), decoded_size=list(xs[0][1]),
                   mean_abs_diff_levels=round(float(np.mean([np.abs(a.astype(int) - b.astype(int)).mean() for (a, _), b in zip(xs, ref)])), 3))
        if all(m.is_file() for m in masks.values()):
            from skinseg.core import lesion_mask
            from skinseg.metrics import mask_scores
            probs = lesion_prob(net, normalise([a for a, _ in xs], cfg), bf16=BF16)
            dices = []
            for f, p in zip(files, probs):
                gt = lesion_mask(masks[f]); pm = full_size(p, gt.shape, cfg['threshold']) > 0
                dices.append(mask_scores(pm, gt)['dice'].item())
            row['mean_dice_vs_mask'] = round(float(np.mean(dices)), 4)
        out[name] = row
    return out

def resize_study(arrays, size, repeats):
    "ms per image to resize decoded arrays to `size` with PIL bilinear, plain and with `reducing_gap=2.0`, and their difference."
    h, w = size
    arrays = arrays[:5]
    plain = lambda a: np.asarray(Image.fromarray(a).resize((w, h), Image.BILINEAR))
    gap = lambda a: np.asarray(Image.fromarray(a).resize((w, h), Image.BILINEAR, reducing_gap=2.0))
    t = interleaved({'bilinear': lambda: [plain(a) for a in arrays], 'bilinear_reducing_gap_2': lambda: [gap(a) for a in arrays]},
                    repeats=repeats, warmup=1)
    diff = float(np.mean([np.abs(plain(a).astype(int) - gap(a).astype(int)).mean() for a in arrays]))
    return {k: dict(ms_per_image=round(1000 * v['min_s'] / len(arrays), 3)) for k, v in t.items()} | dict(mean_abs_diff_levels=round(diff, 3))

def main(args=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument('--n', type=int, default=64, help='images per throughput measurement')
    p.add_argument('--bs', type=int, default=16, help="predict's batch size (its default)")
    p.add_argument('--size', type=int, nargs=2, default=[96, 128], help='input size of the random model when no trained one')
    p.add_argument('--repeats', type=int, default=7)
    p.add_argument('--latency-n', type=int, default=40, help='single-image calls for p50/p95')
    p.add_argument('--tta', action='store_true', help='flip test-time augmentation in both predict and forward')
    p.add_argument('--model', default=str(REAL_MODEL), help="trained model folder, or 'random' for a random-weight U-Net at --size")
    args = p.parse_args(args)
    if args.quick: args.n, args.bs, args.repeats, args.latency_n, args.size = 4, 2, 2, 3, [32, 32]
    show_hardware()
    paths, img_source = get_images(args.n)
    folder, model_source = model_folder(None if args.quick else args.model, args.size)
    model_cfg = net, cfg = model_predict_runs(folder)
    size = tuple(cfg['input_size'])
    arrays = [read_image(f) for f in paths]
    print(f"# images: {img_source}; model: {model_source}; {args.n} images, bs {args.bs}, tta {args.tta}")
    xs = [normalise([load_resized(a, size)[0] for a in arrays[i:i+args.bs]], cfg) for i in range(0, args.n, args.bs)]
    layout = 'channels_last' if xs[0].is_contiguous(memory_format=torch.channels_last) and not xs[0].is_contiguous() else 'nchw'
    xs_nchw = [x.contiguous() for x in xs]
    def forward(batches):
        for x in batches: lesion_prob(net, x, args.tta, BF16)
    run = lambda items, streams=None: predict(items, folder, bs=args.bs, tta=args.tta, postprocess=False, bf16=BF16, streams=streams)
    fns = dict(forward=lambda: forward(xs), forward_nchw=lambda: forward(xs_nchw),
               predict_arrays=lambda: run(arrays), predict_files=lambda: run(paths),
               predict_arrays_1stream=lambda: run(arrays, 1), predict_files_1stream=lambda: run(paths, 1))
    t = interleaved(fns, repeats=args.repeats, warmup=1)
    ips = {k: args.n / v['median_s'] for k, v in t.items()}
    best = {k: args.n / v['min_s'] for k, v in t.items()}  # the least disturbed repeat: other jobs' bursts of load hit the rest
    ratio = {k: ips[k] / ips['forward'] for k in fns if k != 'forward'}
    ratio_best = {k: best[k] / best['forward'] for k in ratio}
    print(f"# forward input as predict makes it: {layout}")
    for k in fns: print(f"{k:22s} {ips[k]:7.1f} images/s median, {best[k]:7.1f} best  ({args.repeats} repeats of {args.n} images)")
    for k, r in ratio.items(): print(f"ratio {k}/forward = {r:.3f} median, {ratio_best[k]:.3f} best" + ('  (goal >= 0.90)' if k.startswith('predict') else ''))
    stages_ms, ceilings = {}, {}
    for source, items in (('files', paths), ('arrays', arrays)):
        stages = [stage_times(items, model_cfg, args.bs) for _ in range(2 if args.quick else 3)]
        stages_ms[source] = {k: 1000 * min(s[k] for s in stages) / args.n for k in stages[0]}
        ceilings[source] = ceiling(stages_ms[source], os.cpu_count())
        print(f"per-image stage times from {source}, no overlap (ms, best of {len(stages)}): "
              + ", ".join(f"{k} {v:.2f}" for k, v in stages_ms[source].items())
              + f"; ceiling of predict_{source}/forward on {os.cpu_count()} cores: {ceilings[source]:.3f}")
    drafts = draft_study(paths, model_cfg, 2 if args.quick else 5)
    print("JPEG decode + resize at draft scales (ms/image, decoded size, mean |diff| from full decode in levels, Dice on the sample's masks):")
    for k, v in drafts.items(): print(f"  {k:15s} {v['ms_per_image']:6.2f} ms  {v['decoded_size']}  diff {v['mean_abs_diff_levels']:.2f}  Dice {v.get('mean_dice_vs_mask')}")
    resizes = resize_study(arrays, size, 3 if args.quick else 20)
    print(f"resize of a decoded 600x450 array (ms/image, best): {resizes['bilinear']['ms_per_image']:.3f} plain, "
          f"{resizes['bilinear_reducing_gap_2']['ms_per_image']:.3f} with reducing_gap=2.0 (mean |diff| {resizes['mean_abs_diff_levels']:.2f} levels)")
    lat = {}
    for name, item in (('file', paths[0]), ('array', arrays[0])):
        predict(item, folder, postprocess=False, bf16=BF16)
        ts = []
        for _ in range(args.latency_n):
            t0 = time.perf_counter(); predict(item, folder, tta=args.tta, postprocess=False, bf16=BF16); ts.append(time.perf_counter() - t0)
        lat[name] = dict(p50_ms=round(1000 * float(np.percentile(ts, 50)), 2), p95_ms=round(1000 * float(np.percentile(ts, 95)), 2), n=len(ts))
        print(f"single-image latency from {name} (600x450): p50 {lat[name]['p50_ms']:.1f} ms, p95 {lat[name]['p95_ms']:.1f} ms")
    return finish(args, 'predict', dict(
        images=img_source, model=model_source, input_size=list(size), image_size=list(arrays[0].shape[:2]), n_images=args.n,
        bs=args.bs, tta=args.tta, bf16=BF16, forward_input_layout=layout,
        images_per_s={k: round(v, 2) for k, v in ips.items()}, ratio_to_forward={k: round(v, 4) for k, v in ratio.items()},
        images_per_s_best={k: round(v, 2) for k, v in best.items()}, ratio_to_forward_best={k: round(v, 4) for k, v in ratio_best.items()},
        goal_ratio=0.90, stage_ms_per_image={src: {k: round(v, 3) for k, v in st.items()} for src, st in stages_ms.items()},
        ceiling_ratio={k: round(v, 4) for k, v in ceilings.items()},
        jpeg_draft=drafts, array_resize=resizes, latency_ms=lat, details=t))

if __name__ == '__main__': main()
