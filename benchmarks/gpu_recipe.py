"""The full training recipe on one CUDA GPU: ResNet-34 U-Net at 256x256 on the real HAM10000, 5 epochs.

The whole dataset is presized once (`skinseg.data.presize`) and held on the GPU as uint8 tensors; each batch is
indexed there, converted to float, randomly flipped (horizontal and vertical, per image) and normalised on the
GPU, so the data pipeline costs almost nothing. bf16 autocast and channels_last are on. The CE + Dice loss of
`skinseg.train`, AdamW, one-cycle learning rate. Runs once per batch size given (default 16 and 64) and prints
images/s, s/epoch and the validation per-image IoU (at the training size) after every epoch.

    .venv/bin/python benchmarks/gpu_recipe.py                 # on a CUDA machine, with ../shared/data/ham10000
    .venv/bin/python benchmarks/gpu_recipe.py --quick         # seconds on CPU: tiny settings, proves it runs

Not a `bench_*.py`: `make bench` (CPU) does not run it.
"""
import sys; from pathlib import Path; sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import *
import time, torch
from skinseg.core import find_data_dir, bf16_supported, IMAGENET_MEAN, IMAGENET_STD
from skinseg.data import find_pairs, split_pairs, presize, synthetic_dataset
from skinseg.train import CEDiceLoss, model_for_training
from skinseg.metrics import mask_scores

def to_device(df, size, device):
    "`(images N x 3 x H x W uint8, masks N x H x W uint8 0/1)` of `df` presized to `size`, on `device`."
    ims, mks = presize(df, size)
    return torch.from_numpy(ims).to(device).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last), torch.from_numpy(mks).to(device)

def gpu_batch(ims, mks, idx, mean, std, flip:bool):
    "A normalised float batch and its long masks, cut from the device tensors, each image flipped at random when `flip`."
    x, y = ims[idx].float().div_(255), mks[idx].long()
    if flip:
        for dim in (3, 2):  # horizontal, vertical: the same flip for an image and its mask
            f = torch.rand(len(idx), device=x.device) < 0.5
            x = torch.where(f[:, None, None, None], x.flip(dim), x); y = torch.where(f[:, None, None], y.flip(dim - 1), y)
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last), y

def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize()

def run(train, valid, size, bs, epochs, lr, device, weights, pretrained, bf16, log):
    "Train one model; per-epoch images/s, seconds and validation per-image IoU."
    torch.manual_seed(42)
    model, init = model_for_training('smp', pretrained=pretrained, weights=weights, size=size)
    model = model.to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.)
    steps = len(train[0]) // bs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps, pct_start=0.25)
    loss_fn = CEDiceLoss()
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1); std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    rows = []
    for epoch in range(epochs):
        model.train(); sync(device); t0 = time.perf_counter()
        perm = torch.randperm(len(train[0]), device=device)
        for i in range(steps):
            x, y = gpu_batch(*train, perm[i*bs:(i+1)*bs], mean, std, flip=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16): out = model(x)
            loss = loss_fn(out.float(), y)
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); sched.step()
        sync(device); train_s = time.perf_counter() - t0
        model.eval(); ious = []
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            for i in range(0, len(valid[0]), 2 * bs):
                idx = torch.arange(i, min(i + 2 * bs, len(valid[0])), device=device)
                x, y = gpu_batch(*valid, idx, mean, std, flip=False)
                ious.append(mask_scores(model(x).float().argmax(1) == 1, y == 1)['iou'])
        sync(device); epoch_s = time.perf_counter() - t0
        row = dict(epoch=epoch + 1, train_s=round(train_s, 3), epoch_s=round(epoch_s, 3), train_images_per_s=round(steps * bs / train_s, 1),
                   loss=round(float(loss.detach()), 4), valid_iou=round(float(torch.cat(ious).mean()), 4))
        rows.append(row); log(f"bs {bs:4d} epoch {row['epoch']}: {row['train_images_per_s']:8.1f} images/s, {row['epoch_s']:6.2f} s/epoch, "
                              f"loss {row['loss']:.4f}, valid per-image IoU {row['valid_iou']:.4f}")
    later = rows[1:] or rows  # epoch 1 includes cuDNN autotuning and allocator warm-up
    return dict(bs=bs, lr=lr, encoder_init=init, steps_per_epoch=steps, epochs=rows,
                median_train_images_per_s=median([r['train_images_per_s'] for r in later]),
                median_epoch_s=median([r['epoch_s'] for r in later]), final_valid_iou=rows[-1]['valid_iou'])

def main(args=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument('--size', type=int, nargs=2, default=[256, 256])
    p.add_argument('--bs', type=int, nargs='+', default=[16, 64], help='batch sizes, one full run each')
    p.add_argument('--lr', type=float, default=1e-3, help='peak learning rate at bs 16; scaled by sqrt(bs/16) for other batch sizes')
    p.add_argument('--epochs', type=int, default=5)
    p.add_argument('--weights', default=None, help='local ImageNet ResNet-34 weights (torchvision resnet34-b627a593.pth) instead of a download')
    p.add_argument('--no-pretrained', action='store_true')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--limit', type=int, default=None, help='use only this many images')
    args = p.parse_args(args)
    if args.quick: args.size, args.bs, args.epochs, args.limit, args.no_pretrained = [32, 32], [4, 8], 1, 24, True
    show_hardware()
    device = torch.device(args.device)
    if device.type == 'cuda': torch.backends.cudnn.benchmark = True; torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    bf16 = bf16_supported(device.type)
    ham = None if args.quick else find_data_dir('ham10000')
    if ham is not None: data, df = f'real HAM10000 ({ham})', find_pairs(ham)
    else:
        data = 'synthetic (skinseg.data.synthetic_dataset)' + ('' if args.quick else ': HAM10000 NOT FOUND, numbers are not the recipe')
        df = find_pairs(synthetic_dataset(scratch_dir()/'data', n=args.limit or 200))
    if args.limit: df = df.sample(n=min(args.limit, len(df)), random_state=42).reset_index(drop=True)
    df = split_pairs(df, seed=42)
    size = tuple(args.size)
    t0 = time.perf_counter()
    train, valid = to_device(df[~df.is_valid].reset_index(drop=True), size, device), to_device(df[df.is_valid].reset_index(drop=True), size, device)
    load_s = time.perf_counter() - t0
    mb = sum(t.numel() * t.element_size() for t in (*train, *valid)) / 2**20
    print(f"# data: {data}; {len(train[0])} train / {len(valid[0])} valid images at {size[0]}x{size[1]}, "
          f"presized and moved to {device} in {load_s:.1f} s ({mb:.0f} MiB as uint8); bf16 {bf16}, channels_last")
    runs = [run(train, valid, size, bs, args.epochs, args.lr * (bs / 16) ** 0.5, device, args.weights, not args.no_pretrained, bf16, print)
            for bs in args.bs]
    for r in runs: print(f"bs {r['bs']}: {r['median_train_images_per_s']:.1f} images/s, {r['median_epoch_s']:.2f} s/epoch (median of epochs 2+), "
                         f"final valid per-image IoU {r['final_valid_iou']:.4f} ({r['encoder_init']})")
    return finish(args, 'gpu_recipe', dict(data=data, device=str(device), size=list(size), epochs=args.epochs, bf16=bf16, channels_last=True,
                                           n_train=len(train[0]), n_valid=len(valid[0]), load_s=round(load_s, 2), dataset_mib=round(mb, 1), runs=runs))

if __name__ == '__main__': main()
