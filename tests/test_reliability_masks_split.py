"""Reliability of mask reading, devices and `skinseg split`, run as a user runs them: a palette mask is read by its
colours, a device that cannot hold the model is named as the problem, and `split` never writes over a file it did not write."""
import json, shutil
from pathlib import Path
import numpy as np
import pandas as pd
from PIL import Image

from skinseg.images import read_mask
from conftest import run_inprocess, make_dataset
from test_reliability_cli import one_error_line

def as_adaptive_palette(mask_file:Path, colour=(255, 0, 0)):
    "Rewrite a 0/255 mask as a 2-colour palette PNG the way PIL's `convert('P', ADAPTIVE)` saves it (lesion colour at index 0)."
    m = np.asarray(Image.open(mask_file)); rgb = np.zeros(m.shape + (3,), np.uint8); rgb[m > 0] = colour
    Image.fromarray(rgb).convert('P', palette=Image.Palette.ADAPTIVE, colors=2).save(mask_file)

def test_adaptive_palette_masks_read_by_colour(tmp_path):
    "Red-on-black palette masks (red at index 0) are the masks they show: check passes, Dice against the 0/255 originals is 1."
    d = make_dataset(tmp_path/'data', n=4)
    pal = shutil.copytree(d, tmp_path/'pal')
    for f in (pal/'masks').iterdir(): as_adaptive_palette(f)
    f = next((pal/'masks').iterdir())
    assert np.asarray(Image.open(f)).max() == 1 and Image.open(f).getpalette()[:3] == [255, 0, 0]  # the case: lesion at index 0
    assert (read_mask(f) == read_mask(d/'masks'/f.name)).all()
    assert run_inprocess('check', pal).returncode == 0
    r = run_inprocess('evaluate', pal, d/'masks', '--csv', tmp_path/'s.csv')
    assert r.returncode == 0 and json.loads(r.stdout)['dice'] == 1, (r.stdout, r.stderr)

def test_numbered_cpu_device_is_named_not_the_model(tiny_model_dir, tmp_path):
    "`--device cpu:1` is refused in one line naming the device, not blamed on the model file."
    img = tmp_path/'ISIC_0000001.png'; Image.new('RGB', (40, 30), (200, 150, 130)).save(img)
    line = one_error_line(run_inprocess('predict', tiny_model_dir, img, '--device', 'cpu:1', '--out', tmp_path/'out'),
                          'predict', "'cpu:1'", contains="use 'cpu'")
    assert 'safetensors' not in line and str(tiny_model_dir) not in line, line
    assert not (tmp_path/'out').exists()

def test_split_refuses_to_write_over_files_it_did_not_write(tmp_path):
    "`split --out` over the dataset's metadata or a user's notes is refused, the file untouched; its own CSV is replaced."
    d = make_dataset(tmp_path/'data', n=8)
    (tmp_path/'notes.csv').write_text('image_id,my notes\nSYNTH_0000,looks odd\n')
    for f in (d/'metadata.csv', tmp_path/'notes.csv'):
        before = f.read_bytes()
        one_error_line(run_inprocess('split', d, '--out', f), 'split', f, contains='already exists and is not a split CSV of skinseg split')
        assert f.read_bytes() == before
    out = tmp_path/'split.csv'
    assert run_inprocess('split', d, '--out', out).returncode == 0
    r = run_inprocess('split', d, '--folds', '2', '--out', out)  # an earlier split of its own: replaced
    assert r.returncode == 0, r.stderr
    assert 'fold' in pd.read_csv(out).columns

def test_split_checks_seed_as_train_does(tmp_path):
    "A negative or too large --seed is one line naming --seed (no numpy traceback), and nothing is written."
    d = make_dataset(tmp_path/'data', n=8)
    for seed in ('-1', '99999999999'):
        one_error_line(run_inprocess('split', d, '--seed', seed, '--out', tmp_path/'s.csv'), 'split', '--seed',
                       contains=f'must be a whole number from 0 to 2**32-1, got {seed}')
    assert not (tmp_path/'s.csv').exists()
    assert run_inprocess('split', d, '--seed', str(2**32 - 1), '--out', tmp_path/'s.csv').returncode == 0
