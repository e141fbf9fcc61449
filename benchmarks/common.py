"Shared helpers for the skinseg benchmarks: hardware facts, interleaved timing, and the results file."
import skinseg.core  # first: fixes the CPU-torch/CUDA-torchvision import clash
import os, sys, json, time, platform, statistics, subprocess, argparse, tempfile, atexit, shutil
from pathlib import Path
import torch

RESULTS = Path(__file__).resolve().parent/'results'
REPO = Path(__file__).resolve().parent.parent

def _lscpu():
    try: out = subprocess.run(['lscpu'], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError): return {}
    return {k.strip(): v.strip() for k, v in (l.split(':', 1) for l in out.splitlines() if ':' in l)}

def cpu_mhz() -> float|None:
    "The current clock of CPU 0 in MHz from /proc/cpuinfo (a VM often reports its nominal clock here)."
    try:
        for l in Path('/proc/cpuinfo').read_text().splitlines():
            if l.startswith('cpu MHz'): return float(l.split(':')[1])
    except OSError: pass
    return None

def hardware() -> dict:
    "The machine and software a measurement ran on."
    ls = _lscpu()
    flags = ls.get('Flags', '').split()
    return dict(cpu=ls.get('Model name', platform.processor()), cpu_family=ls.get('CPU family'), cpu_model=ls.get('Model'),
                cores=os.cpu_count(), mhz=cpu_mhz(), max_mhz=ls.get('CPU max MHz'),
                avx512f='avx512f' in flags, avx512_bf16='avx512_bf16' in flags, amx_bf16='amx_bf16' in flags,
                torch=torch.__version__, torch_threads=torch.get_num_threads(), python=platform.python_version(),
                tcmalloc='tcmalloc' in os.environ.get('LD_PRELOAD', ''),
                load_avg_1min=os.getloadavg()[0], gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)

_RUN = dict(script=sys.argv[0], argv=sys.argv[1:])

def now_utc() -> str:
    "The time now in UTC, as the records write it (2026-12-05T09:00:46Z)."
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())

def command() -> str:
    "The command line that produced these results, as it would be typed from the repo root."
    pre = 'LD_PRELOAD=' + os.environ['LD_PRELOAD'] + ' ' if os.environ.get('LD_PRELOAD') else ''
    script = Path(_RUN['script']).resolve()
    script = script.relative_to(REPO) if script.is_relative_to(REPO) else script
    return f"{pre}.venv/bin/python {script} {' '.join(map(str, _RUN['argv']))}".strip()

class _Parser(argparse.ArgumentParser):
    "Remembers the script and the arguments it parsed, for `command`."
    def __init__(self, script, **kw): super().__init__(**kw); self.script = script
    def parse_args(self, args=None, namespace=None):
        _RUN.update(script=self.script, argv=sys.argv[1:] if args is None else list(args))
        ns = super().parse_args(args, namespace)
        if ns.threads: torch.set_num_threads(ns.threads)
        return ns

def parser(doc:str) -> argparse.ArgumentParser:
    "An argument parser with the options every benchmark shares: `--quick` and `--out`."
    import inspect
    p = _Parser(inspect.stack()[1].filename, description=doc)
    p.add_argument('--quick', action='store_true', help='tiny settings that finish in seconds (proves the script works; timings mean nothing)')
    p.add_argument('--threads', type=int, default=None, help="torch's intra-op threads (default: torch's own choice, one per core)")
    p.add_argument('--out', type=Path, default=None, help='results JSON (default: benchmarks/results/NAME.json; with --quick, a temp folder)')
    return p

def scratch_dir() -> Path:
    "A new temporary folder, removed when the process exits: a benchmark leaves nothing behind."
    path = Path(tempfile.mkdtemp(prefix='skinseg-bench-'))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path

def median(xs): return float(statistics.median(xs))

def interleaved(fns:dict, # name -> zero-argument callable doing one unit of work
                repeats:int=5, # timed rounds; each round runs every variant once, in rotating order
                warmup:int=1, # untimed rounds first
               ) -> dict:
    "Seconds per call of each variant: every round runs all variants (order rotated), warm-up rounds excluded; median, min and all times."
    names = list(fns)
    times = {n: [] for n in names}
    for r in range(warmup + repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            t0 = time.perf_counter(); fns[n](); dt = time.perf_counter() - t0
            if r >= warmup: times[n].append(dt)
    return {n: dict(median_s=median(t), min_s=min(t), times_s=[round(x, 5) for x in t]) for n, t in times.items()}

def out_path(args, name:str) -> Path:
    if args.out is not None: return Path(args.out)
    if args.quick: return Path(tempfile.gettempdir())/'skinseg_bench_quick'/f'{name}.json'
    return RESULTS/f'{name}.json'

def finish(args, name:str, results:dict) -> dict:
    "Add hardware, command and mode to `results`, write them as JSON and print them."
    results = dict(benchmark=name, quick=bool(args.quick), command=command(), hardware=hardware(),
                   when_utc=now_utc()) | results
    path = out_path(args, name); path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=str) + '\n')
    print(json.dumps({k: v for k, v in results.items() if k != 'details'}, indent=1, default=str))
    print(f"wrote {path}")
    return results

def show_hardware():
    h = hardware()
    print(f"# {h['cpu']} ({h['cores']} cores, {h['mhz']} MHz), torch {h['torch']}, {h['torch_threads']} threads, "
          f"tcmalloc {'on' if h['tcmalloc'] else 'OFF'}, load {h['load_avg_1min']:.2f}")
    print(f"# command: {command()}")
    if not h['tcmalloc']: print("# warning: run with LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 for steady timings")

def rel(path) -> str:
    "`path` relative to the repository root when it lies inside it."
    p = Path(path).resolve()
    return str(p.relative_to(REPO)) if p.is_relative_to(REPO) else str(path)

def ham_pairs(ham) -> 'pd.DataFrame':
    "image_id, image, mask, lesion_id, dx of a HAM10000-layout folder (`skinseg.data.find_pairs` when it exists)."
    import pandas as pd
    try:
        from skinseg.data import find_pairs
        return find_pairs(ham)
    except ImportError: pass
    ham = Path(ham)
    imgs = sorted(p for d in ham.glob('HAM10000_images*') for p in d.glob('*.jpg'))
    df = pd.DataFrame({'image_id': [p.stem for p in imgs], 'image': [str(p) for p in imgs]})
    df['mask'] = [str(ham/'HAM10000_segmentations_lesion_tschandl'/f'{i}_segmentation.png') for i in df.image_id]
    meta = pd.read_csv(ham/'HAM10000_metadata.csv')[['image_id', 'lesion_id', 'dx']]
    return df.merge(meta, on='image_id', how='left').sort_values('image_id', ignore_index=True)

def validation_pairs(model_dir=None, # model folder whose split.csv (image_id, is_valid) to use
                     n:int|None=None, # keep the first n validation images
                    ) -> tuple:
    "`(pairs with is_valid, validation rows, how the split was made)` on the real HAM10000, or `(None, None, why)`."
    ham = skinseg.core.find_data_dir('ham10000')
    if ham is None: return None, None, 'HAM10000 not found under ../shared/data or $SKINSEG_DATA'
    df = ham_pairs(ham)
    split_csv = Path(model_dir)/'split.csv' if model_dir else None
    if split_csv is not None and split_csv.is_file():
        from skinseg.data import read_split
        s = read_split(split_csv)
        df, how = df.assign(is_valid=df.image_id.isin(set(s.image_id[s.is_valid]))), f'{rel(split_csv)} (the split the model was trained on)'
    else:
        try:
            from skinseg.data import split_pairs
            df, how = split_pairs(df, seed=42), 'skinseg.data.split_pairs(find_pairs(ham), seed=42)'
        except ImportError:  # lesion-grouped 20% split by a hash of lesion_id, until skinseg.data exists
            import zlib
            df = df.assign(is_valid=[zlib.crc32(str(l).encode()) % 5 == 0 for l in df.lesion_id])
            how = 'fallback: lesion-grouped 20% split by crc32(lesion_id) (skinseg.data not available)'
    val = df[df.is_valid].reset_index(drop=True)
    return df, (val if n is None else val.iloc[:n]), how

def prepare(arrays, size, mean=skinseg.core.IMAGENET_MEAN, std=skinseg.core.IMAGENET_STD) -> torch.Tensor:
    "Contiguous NCHW float batch: each HxWx3 uint8 array resized bilinearly (PIL) to `size` (h, w) and normalised, as `predict` does."
    import numpy as np
    from PIL import Image
    h, w = size
    x = torch.from_numpy(np.stack([np.asarray(Image.fromarray(a).resize((w, h), Image.BILINEAR)) for a in arrays]))
    x = x.permute(0, 3, 1, 2).float().div_(255)
    return ((x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)).contiguous()
