"""`skinseg.data` as users meet it: `skinseg check` and `skinseg split` on synthetic sets with planted problems,
and on the real HAM10000 folder when it is present."""
import shutil, warnings
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import skinseg.core
from skinseg.core import find_data_dir, read_mask, read_image
from skinseg.data import synthetic_dataset, find_pairs, split_pairs, kfold_pairs, check_dataset, seg_dataloaders
from conftest import run_skinseg, run_inprocess

@pytest.fixture(scope='module')
def syn(tmp_path_factory) -> Path:
    return synthetic_dataset(tmp_path_factory.mktemp('data')/'synth', n=20, size=(60, 80), seed=1)

@pytest.fixture(scope='module')
def ham() -> Path:
    d = find_data_dir()
    if d is None: pytest.skip("HAM10000 not found under ../shared/data or $SKINSEG_DATA")
    return d

def plant_problems(syn:Path, dest:Path) -> dict:
    "Copy `syn` to `dest` with one problem of each kind: {file name: words its line must contain}."
    bad = shutil.copytree(syn, dest)
    (bad/'masks'/'SYNTH_0001.png').unlink()
    shutil.copy(bad/'masks'/'SYNTH_0002.png', bad/'masks'/'ORPHAN_0001.png')
    Image.fromarray(read_mask(syn/'masks'/'SYNTH_0003.png')[:30]).save(bad/'masks'/'SYNTH_0003.png')
    m = read_mask(syn/'masks'/'SYNTH_0004.png').copy(); m[m == 255] = 200; m[:3, :3] = 100
    Image.fromarray(m).save(bad/'masks'/'SYNTH_0004.png')
    (bad/'images'/'SYNTH_0005.jpg').write_bytes((syn/'images'/'SYNTH_0005.jpg').read_bytes()[:800])
    (bad/'images'/'SYNTH_0006.jpg').write_bytes(b'')
    (bad/'masks'/'SYNTH_0007.png').write_text('not a png')
    shutil.copy(bad/'images'/'SYNTH_0008.jpg', bad/'images'/'SYNTH_0008.png')
    return {'SYNTH_0001.jpg': 'no mask', 'ORPHAN_0001.png': 'mask without an image',
            'SYNTH_0003.png': 'mask is 80x30 but its image', 'SYNTH_0004.png': 'expected two levels',
            'SYNTH_0005.jpg': 'truncated', 'SYNTH_0006.jpg': 'empty file', 'SYNTH_0007.png': 'not an image',
            'SYNTH_0008.png': 'duplicate image id SYNTH_0008'}

def test_check_clean_set_exits_0(syn):
    r = run_skinseg('check', syn, '--quiet')
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == '20 pairs OK'

def test_check_names_every_planted_problem(syn, tmp_path):
    expected = plant_problems(syn, tmp_path/'bad')
    r = run_inprocess('check', tmp_path/'bad', '--quiet')
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    for name, words in expected.items():
        hits = [l for l in lines if name in l and words in l]
        assert len(hits) == 1, f"{name} / {words!r} not reported once in:\n{r.stdout}"
    assert lines[-1].startswith(f'{len(expected)} problems found')

def test_check_accepts_other_modes_and_exif(syn, tmp_path):
    d = shutil.copytree(syn, tmp_path/'modes')
    im = read_image(syn/'images'/'SYNTH_0000.jpg')
    Image.fromarray(im).convert('L').save(d/'images'/'SYNTH_0000.jpg')
    (d/'images'/'SYNTH_0001.jpg').unlink(); Image.fromarray(im).convert('RGBA').save(d/'images'/'SYNTH_0001.png')
    exif = Image.Exif(); exif[0x0112] = 8  # rotate 90° counter-clockwise to display
    Image.fromarray(im).transpose(Image.Transpose.ROTATE_270).save(d/'images'/'SYNTH_0002.jpg', exif=exif)
    Image.fromarray(read_mask(syn/'masks'/'SYNTH_0003.png') // 255).convert('P').save(d/'masks'/'SYNTH_0003.png')
    Image.fromarray(read_mask(syn/'masks'/'SYNTH_0004.png').astype(np.uint16) * 257).save(d/'masks'/'SYNTH_0004.png')
    assert check_dataset(d) == []

def test_check_bad_folder_is_one_error_line(tmp_path):
    (tmp_path/'empty').mkdir()
    r = run_inprocess('check', tmp_path/'empty')
    assert r.returncode == 2 and 'empty folder' in r.stderr and str(tmp_path/'empty') in r.stderr

def test_split_keeps_lesions_together_and_is_reproducible(syn, tmp_path):
    for out in ['a.csv', 'b.csv']: assert run_inprocess('split', syn, '--out', tmp_path/out).returncode == 0
    a, b = pd.read_csv(tmp_path/'a.csv'), pd.read_csv(tmp_path/'b.csv')
    assert a.equals(b)
    assert list(a.columns) == ['image_id', 'lesion_id', 'dx', 'is_valid'] and len(a) == 20
    assert a.groupby('lesion_id').is_valid.nunique().max() == 1
    assert 0 < a.is_valid.sum() < 20
    assert run_inprocess('split', syn, '--seed', '7', '--out', tmp_path/'c.csv').returncode == 0
    assert not pd.read_csv(tmp_path/'c.csv').is_valid.equals(a.is_valid)

def test_split_folds(syn, tmp_path):
    assert run_inprocess('split', syn, '--folds', '4', '--out', tmp_path/'f.csv').returncode == 0
    f = pd.read_csv(tmp_path/'f.csv')
    assert sorted(f.fold.unique()) == [0, 1, 2, 3] and f.groupby('lesion_id').fold.nunique().max() == 1

def test_split_without_metadata_warns(syn, tmp_path):
    d = shutil.copytree(syn, tmp_path/'nometa'); (d/'metadata.csv').unlink()
    df = find_pairs(d)
    assert (df.lesion_id == df.image_id).all() and df.dx.isna().all()
    with pytest.warns(UserWarning, match='splitting by image'): split_pairs(df)

def test_mask_suffixes_in_generic_layout(syn, tmp_path):
    d = shutil.copytree(syn, tmp_path/'suffix')
    for i, p in enumerate(sorted((d/'masks').iterdir())): p.rename(p.with_name(p.stem + ('_mask' if i % 2 else '_segmentation') + '.png'))
    df = find_pairs(d)
    assert df['mask'].notna().all() and check_dataset(d) == []

def test_dataloaders_mask_is_binary_and_aligned(syn):
    dls = seg_dataloaders(split_pairs(find_pairs(syn)), size=(48, 64), bs=4)
    for xb, yb in dls.train:
        assert set(yb.unique().tolist()) <= {0, 1}
        grey = xb.mean(1)
        assert grey[yb == 1].mean() < grey[yb == 0].mean()  # the dark lesion stays under its mask
    dls_nc = seg_dataloaders(split_pairs(find_pairs(syn)), size=(48, 64), bs=4, cache=False)
    assert (dls.valid.one_batch()[1] != dls_nc.valid.one_batch()[1]).float().mean() < 0.01

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
