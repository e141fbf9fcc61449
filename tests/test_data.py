"""`skinseg.data` beyond its notebook (nbs/api/07_data.ipynb): `skinseg check` as a subprocess, an unreadable mask,
other mask names and layouts, and the real HAM10000 folders when they are present."""
import shutil
from pathlib import Path
import numpy as np
import pytest

from skinseg.core import find_data_dir, read_image
from skinseg.data import synthetic_dataset, find_pairs, split_pairs, kfold_pairs, check_dataset
from conftest import run_skinseg, run_inprocess

@pytest.fixture(scope='module')
def syn(tmp_path_factory) -> Path:
    return synthetic_dataset(tmp_path_factory.mktemp('data')/'synth', n=20, size=(60, 80), seed=1)

@pytest.fixture(scope='module')
def ham() -> Path:
    d = find_data_dir()
    if d is None: pytest.skip("HAM10000 not found under ../shared/data or $SKINSEG_DATA")
    return d

def test_check_clean_set_exits_0(syn):
    r = run_skinseg('check', syn, '--quiet')
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == '20 pairs OK'

def test_check_reports_an_unreadable_mask(syn, tmp_path):
    "A mask file that is not an image is one problem line naming it (the notebook plants broken images, not masks)."
    bad = shutil.copytree(syn, tmp_path/'bad')
    (bad/'masks'/'SYNTH_0007.png').write_text('not a png')
    r = run_inprocess('check', bad, '--quiet')
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    named = [l for l in lines if 'SYNTH_0007' in l]
    assert len(named) == 1 and 'SYNTH_0007.png' in named[0] and 'not an image' in named[0], r.stdout
    assert lines[-1].startswith('1 problem found'), r.stdout

def test_mask_suffixes_in_generic_layout(syn, tmp_path):
    d = shutil.copytree(syn, tmp_path/'suffix')
    for i, p in enumerate(sorted((d/'masks').iterdir())): p.rename(p.with_name(p.stem + ('_mask' if i % 2 else '_segmentation') + '.png'))
    df = find_pairs(d)
    assert df['mask'].notna().all() and check_dataset(d) == []

def test_real_find_pairs(ham):
    df = find_pairs(ham)
    assert len(df) == 10_015 and df['mask'].notna().all()
    assert df.lesion_id.nunique() == 7_470 and df.dx.value_counts()['nv'] == 6705

def test_real_split_no_lesion_on_both_sides(ham):
    df = split_pairs(find_pairs(ham))
    assert df.groupby('lesion_id').is_valid.nunique().max() == 1
    assert abs(df.is_valid.mean() - 0.2) < 0.01
    per_dx = df.groupby('dx').is_valid.mean()
    assert ((per_dx - 0.2).abs() < 0.03).all(), per_dx
    k = kfold_pairs(df)
    assert k.groupby('lesion_id').fold.nunique().max() == 1 and k.fold.value_counts().min() > 1900

def test_real_check_subset(ham, tmp_path):
    "The real masks and images pass the check (a 300-pair subset, linked into the official layout)."
    sub = tmp_path/'ham_sub'
    for d in ['HAM10000_images_part_1', 'HAM10000_segmentations_lesion_tschandl']: (sub/d).mkdir(parents=True)
    for p in sorted((ham/'HAM10000_images_part_1').glob('*.jpg'))[:300]:
        (sub/'HAM10000_images_part_1'/p.name).symlink_to(p)
        m = f'{p.stem}_segmentation.png'
        (sub/'HAM10000_segmentations_lesion_tschandl'/m).symlink_to(ham/'HAM10000_segmentations_lesion_tschandl'/m)
    shutil.copy(ham/'HAM10000_metadata.csv', sub)
    r = run_inprocess('check', sub, '--quiet')
    assert r.returncode == 0 and r.stdout.strip() == '300 pairs OK', r.stdout

def test_isic2017_layout_skips_superpixels(syn, tmp_path):
    "ISIC 2017 Task 1: image folder beside a GroundTruth folder; `_superpixels.png` files are not images."
    d = tmp_path/'isic2017'
    (d/'ISIC-2017_Training_Data').mkdir(parents=True); (d/'ISIC-2017_Training_Part1_GroundTruth').mkdir()
    for p in sorted((syn/'images').iterdir()):
        shutil.copy(p, d/'ISIC-2017_Training_Data'/p.name)
        shutil.copy(syn/'masks'/f'{p.stem}.png', d/'ISIC-2017_Training_Data'/f'{p.stem}_superpixels.png')
        shutil.copy(syn/'masks'/f'{p.stem}.png', d/'ISIC-2017_Training_Part1_GroundTruth'/f'{p.stem}_segmentation.png')
    (d/'ISIC-2017_Training_Data'/'ISIC-2017_Training_Data_metadata.csv').write_text('image_id,age\n')
    df = find_pairs(d)
    assert df.attrs['layout'] == 'ISIC Task 1' and len(df) == 20 and df['mask'].notna().all()
    assert check_dataset(d) == []

def test_real_fullres_sample(tmp_path):
    "The five original-size (600x450) HAM10000 pairs: found, clean, and presized to the training size."
    full = find_data_dir('ham10000_fullres_sample')
    if full is None: pytest.skip("HAM10000 full-resolution sample not found under ../shared/data or $SKINSEG_DATA")
    df = find_pairs(full)
    assert len(df) == 5 and df['mask'].notna().all() and df.dx.notna().all()
    assert check_dataset(full) == []
    assert read_image(df.image[0]).shape == (450, 600, 3)
    from skinseg.data import presize
    ims, mks = presize(df, (96, 128))
    assert ims.shape == (5, 96, 128, 3) and set(np.unique(mks)) <= {0, 1} and 0.01 < mks.mean() < 0.99
