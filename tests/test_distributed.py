"Data-parallel training through fastai's `distrib_ctx` (Accelerate + DDP): two CPU processes, gloo backend."
import os, subprocess, sys
from pathlib import Path
import pandas as pd, pytest
from skinseg.core import load_model
from skinseg.data import synthetic_dataset

BIN = Path(sys.executable).parent

def test_two_cpu_processes_train_one_model(tmp_path):
    pytest.importorskip('accelerate', reason="accelerate not installed: fastai's distrib_ctx needs it (pip install 'skinseg[dev]')")
    data = synthetic_dataset(tmp_path/'data', n=24)
    out = tmp_path/'ddp'
    # torchrun as `python -m torch.distributed.run`: it ships with torch, so there is nothing to skip for
    env = dict(os.environ, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='', TMPDIR=str(tmp_path))  # torchrun leaves its log folder there
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
                        str(BIN/'skinseg'), 'train', str(data), '--out', str(out),
                        '--epochs', '1', '--size', '32', '32', '--bs', '4', '--no-pretrained', '--encoder', 'resnet18', '--threads', '1'],
                       capture_output=True, text=True, timeout=240, env=env)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    for rank in (0, 1): assert f'process {rank} of 2 finished' in r.stdout
    assert [p.name for p in out.glob('*.safetensors')] != [] and (out/'model.safetensors').is_file()
    model, cfg = load_model(out)
    assert cfg['training']['processes'] == 2
    assert pd.read_csv(out/'log.csv').epoch.tolist() == [0]  # one log, written by process 0 only
