"""Inference variants at the model's input size: fp32 eager, channels_last, bf16 autocast, bf16 weights, ONNX Runtime.

Throughput (images/s, bs 16) of each variant, measured interleaved in one process, and each variant's change in
mean per-image Dice against fp32 on the real HAM10000 validation split (masks upsampled to the image's own size and
thresholded exactly as `predict` does). Names the fastest variant whose Dice stays within 0.005 of fp32.
`bf16_folded_bn_weights` is `skinseg.core.bf16_inference_model`: every BatchNorm folded into its convolution and
the weights stored in bfloat16, so there are no per-call weight casts (autocast casts every weight on every call).
"""
import sys; from pathlib import Path; sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import *
import copy, time, warnings, numpy as np, torch
import torch.nn.functional as F
from skinseg.core import build_model, default_config, load_model, read_image, lesion_mask, bf16_inference_model
from skinseg.metrics import mask_scores

REAL_MODEL = REPO/'models'/'ham10000_96x128'
CL = torch.channels_last

def export_onnx(model, x, path):
    "Export `model` to ONNX with a dynamic batch axis: TorchScript exporter, the dynamo one if that fails."
    kw = dict(input_names=['image'], output_names=['logits'], opset_version=17)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        try: torch.onnx.export(model, (x,), str(path), dynamic_axes={'image': {0: 'batch'}, 'logits': {0: 'batch'}}, dynamo=False, **kw)
        except Exception:
            torch.onnx.export(model, (x,), str(path), dynamic_shapes={'x': {0: torch.export.Dim('batch')}}, dynamo=True, **kw)
    return path

def lesion_softmax(logits): return logits.float().softmax(1)[:, 1]

def variants(model, x_example, tmp):
    "name -> function from a contiguous NCHW float batch to the `(B, h, w)` lesion probability."
    from skinseg.model import import_onnxruntime
    ort = import_onnxruntime()
    model_cl = copy.deepcopy(model).to(memory_format=CL)
    def eager(m, cl=False, bf16=False):
        def f(x):
            with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
                return lesion_softmax(m(x.contiguous(memory_format=CL) if cl else x))
        return f
    opts = ort.SessionOptions(); opts.intra_op_num_threads = torch.get_num_threads()
    sess = ort.InferenceSession(str(export_onnx(model, x_example, tmp/'model.onnx')), opts, providers=['CPUExecutionProvider'])
    def onnx(x): return lesion_softmax(torch.from_numpy(sess.run(None, {'image': x.numpy()})[0]))
    folded_bf16 = bf16_inference_model(model, x_example)  # what predict runs for a model folder where bf16 is native
    def bf16_weights(x):
        with torch.inference_mode(): return lesion_softmax(folded_bf16(x.to(torch.bfloat16).contiguous(memory_format=CL)))
    return {'fp32': eager(model), 'fp32_channels_last_input': eager(model, cl=True),
            'channels_last': eager(model_cl, cl=True), 'bf16': eager(model, bf16=True),
            'bf16_channels_last': eager(model_cl, cl=True, bf16=True), 'bf16_folded_bn_weights': bf16_weights,
            'onnxruntime_fp32': onnx}

def eval_dice(fns, val, cfg, bs):
    "Per-image Dice of every variant on the validation pairs, and each variant's mask disagreement with fp32."
    h, w = cfg['input_size']
    images = [read_image(p) for p in val.image]
    masks = [lesion_mask(p) for p in val['mask']]
    per = {k: [] for k in fns}; disagree = {k: [] for k in fns}; maxdiff = {k: 0. for k in fns}
    for i in range(0, len(images), bs):
        x = prepare(images[i:i+bs], cfg['input_size'], cfg['mean'], cfg['std'])
        probs = {k: f(x) for k, f in fns.items()}
        for k, p in probs.items():
            maxdiff[k] = max(maxdiff[k], float((p - probs['fp32']).abs().max()))
            for j, gt in enumerate(masks[i:i+bs]):
                up = F.interpolate(p[j][None, None], size=gt.shape, mode='bilinear', align_corners=False)[0, 0].numpy()
                ref = F.interpolate(probs['fp32'][j][None, None], size=gt.shape, mode='bilinear', align_corners=False)[0, 0].numpy()
                pm = up > cfg['threshold']
                per[k].append(mask_scores(pm, gt)['dice'].item()); disagree[k].append(float((pm != (ref > cfg['threshold'])).mean()))
    base = float(np.mean(per['fp32']))
    return {k: dict(mean_dice=round(float(np.mean(v)), 5), dice_delta_vs_fp32=round(float(np.mean(v)) - base, 5),
                    pixel_disagreement_vs_fp32=round(float(np.mean(disagree[k])), 6), max_abs_prob_diff=round(maxdiff[k], 5))
            for k, v in per.items()}

def main(args=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument('--model', default=str(REAL_MODEL), help='trained model folder (random weights if absent: no Dice claims)')
    p.add_argument('--bs', type=int, default=16)
    p.add_argument('--batches', type=int, default=4, help='batches per throughput measurement')
    p.add_argument('--repeats', type=int, default=7)
    p.add_argument('--n-valid', type=int, default=500, help='validation images for the Dice comparison')
    args = p.parse_args(args)
    if args.quick: args.bs, args.batches, args.repeats, args.n_valid = 2, 1, 2, 4
    show_hardware()
    trained = not args.quick and Path(args.model).is_dir()
    if trained: model, cfg = load_model(args.model); model_source = f'trained model {rel(args.model)}'
    else:
        torch.manual_seed(0); model = build_model(pretrained=False).eval()
        cfg = default_config(input_size=[32, 32] if args.quick else [96, 128])
        model_source = 'random-weight smp U-Net (ResNet-34): speed only, Dice deltas are not meaningful'
    h, w = cfg['input_size']
    print(f"# model: {model_source}; input {h}x{w}, bs {args.bs}")
    tmp = scratch_dir()
    t0 = time.perf_counter(); fns = variants(model, torch.randn(args.bs, 3, h, w), tmp); export_s = time.perf_counter() - t0
    torch.manual_seed(1)
    xs = [torch.randn(args.bs, 3, h, w) for _ in range(args.batches)]
    n = args.bs * args.batches
    t = interleaved({k: (lambda f=f: [f(x) for x in xs]) for k, f in fns.items()}, repeats=args.repeats, warmup=1)
    med = {k: n / v['median_s'] for k, v in t.items()}
    ips = {k: n / v['min_s'] for k, v in t.items()}  # best repeat: on a shared machine, bursts of other jobs' load hit the rest
    for k in fns: print(f"{k:26s} {ips[k]:7.1f} images/s best, {med[k]:7.1f} median   x{ips[k] / ips['fp32']:.2f} vs fp32 (best)")
    _, val, split_how = validation_pairs(args.model if trained else None, args.n_valid)
    quality = eval_dice(fns, val, cfg, args.bs) if val is not None else None
    if quality:
        print(f"# Dice on {len(val)} validation images ({split_how})" + ('' if trained else ' -- random weights: not meaningful'))
        for k, q in quality.items(): print(f"{k:26s} Dice {q['mean_dice']:.4f}  delta {q['dice_delta_vs_fp32']:+.5f}  pixels differing {q['pixel_disagreement_vs_fp32']:.2e}")
    ok = [k for k in fns if quality is None or abs(quality[k]['dice_delta_vs_fp32']) <= 0.005]
    best = max(ok, key=lambda k: ips[k])
    print(f"fastest within 0.005 Dice of fp32: {best} ({ips[best]:.1f} images/s, x{ips[best] / ips['fp32']:.2f})"
          + ('' if trained and quality else ' [speed only: no trained model/data for the Dice check]'))
    return finish(args, 'inference_variants', dict(
        model=model_source, model_is_trained=trained, input_size=[h, w], bs=args.bs, images_per_measurement=n,
        onnx_export_and_session_s=round(export_s, 2),
        images_per_s={k: round(v, 2) for k, v in ips.items()}, speedup_vs_fp32={k: round(v / ips['fp32'], 3) for k, v in ips.items()},
        images_per_s_median={k: round(v, 2) for k, v in med.items()}, speed_from='best of the interleaved repeats',
        dice_split=split_how, n_valid=None if val is None else len(val), quality=quality,
        fastest_within_0005_dice=best, dice_checked=bool(trained and quality), details=t))

if __name__ == '__main__': main()
