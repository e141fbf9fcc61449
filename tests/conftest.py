"""Shared fixtures: a tiny saved model, a synthetic dataset, bad files of every kind, and the console script.

Where tests live: a module's contract is shown, and checked, as examples in its notebook (nbs/api/NN_module.ipynb,
run by nbdev-test); tests/ holds only what a notebook cannot show: the `skinseg` command run as a subprocess, kills,
crashes and resumes, fuzzing, huge files, multi-process training, real data, docs tooling, import structure and the
benchmarks' smoke runs. A check lives in one place; a skip only for a missing optional thing, with a reason -ra prints."""
import os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest, torch
from PIL import Image

from skinseg.model import build_model, default_config, save_model
from skinseg.synthetic import synthetic_dataset

SKINSEG = str(Path(sys.executable).with_name('skinseg'))
TINY_SIZE = [32, 32]

def run_skinseg(*args, timeout=300, env=None, **kw) -> subprocess.CompletedProcess:
    "Run the `skinseg` console script as a user would, and check that no traceback reached the user."
    env = {**os.environ, 'PYTHONWARNINGS': 'ignore', **(env or {})}
    r = subprocess.run([SKINSEG, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env, **kw)
    assert 'Traceback' not in r.stdout + r.stderr, f"skinseg {' '.join(map(str, args))} printed a traceback:\n{r.stderr}"
    return r

def run_inprocess(*args) -> subprocess.CompletedProcess:
    "Run `skinseg ARGS` through the console script's own entry point in this process (no 8 s start-up per call)."
    import contextlib, io, traceback, warnings
    from skinseg.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.filterwarnings('ignore', category=DeprecationWarning)  # as in a real process, where only __main__ shows them
        try: rc = main([*map(str, args)])
        except SystemExit as e: rc = e.code if isinstance(e.code, int) else 2  # argparse usage errors
        except Exception: traceback.print_exc(); rc = 1
    r = subprocess.CompletedProcess(['skinseg', *map(str, args)], rc, out.getvalue(), err.getvalue())
    assert 'Traceback' not in r.stdout + r.stderr, f"skinseg {' '.join(map(str, args))} raised:\n{r.stderr}"
    return r

@pytest.fixture(scope='session')
def tiny_model_dir(tmp_path_factory) -> Path:
    "A saved, untrained ResNet-34 U-Net with a 32x32 input: fast to load and run."
    torch.manual_seed(0)
    return save_model(build_model(pretrained=False), tmp_path_factory.mktemp('model')/'tiny model',
                      default_config(input_size=TINY_SIZE))

@pytest.fixture(scope='session')
def tiny_model(tiny_model_dir) -> tuple:
    "The tiny model, loaded once: a `(model, config)` pair for `predict`."
    from skinseg.core import load_model
    return load_model(tiny_model_dir)

def make_dataset(root:Path, n:int=8, size=(48, 64), seed:int=0) -> Path:
    "A small SYNTHETIC dataset (images/, masks/, metadata.csv) from `skinseg.data.synthetic_dataset`."
    return Path(synthetic_dataset(root, n=n, size=tuple(size), seed=seed))

@pytest.fixture(scope='session')
def synthetic_data(tmp_path_factory) -> Path:
    "A session-wide synthetic dataset; copy it before changing it."
    return make_dataset(tmp_path_factory.mktemp('synthetic')/'data')

def write_bad_images(folder:Path, good:np.ndarray) -> dict:
    "Write one unreadable image of each kind into `folder`: {file name: words the error must contain}."
    folder.mkdir(parents=True, exist_ok=True)
    buf = folder/'_good.jpg'; Image.fromarray(good).save(buf, quality=90)
    jpeg = buf.read_bytes(); buf.unlink()
    (folder/'empty.jpg').write_bytes(b'')
    (folder/'truncated.jpg').write_bytes(jpeg[:len(jpeg)//3])
    (folder/'notes.jpg').write_text('this is a text file, not a JPEG\n')
    (folder/'header only.png').write_bytes(b'\x89PNG\r\n\x1a\n')
    return {'empty.jpg': 'empty', 'truncated.jpg': 'truncated', 'notes.jpg': 'not an image',
            'header only.png': ''}

def pytest_terminal_summary(terminalreporter, exitstatus, config):
    "The tutorials' run times (tests/test_tutorials.py), in the order they ran."
    lines = getattr(config, 'skinseg_tutorial_times', [])
    if lines:
        terminalreporter.section('tutorial run times')
        for line in lines: terminalreporter.write_line(line)
