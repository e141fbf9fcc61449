"""The dataset layouts and metadata files real users have, through the `skinseg` commands (issue 14).

The contract of each layout is shown in nbs/api/05_layouts.ipynb; here the commands are run as a user runs them:
ISIC 2018 Task 1 with the Task 2 and Task 3 folders beside it, PH2 as distributed, images/ + labels/, nnU-Net,
a metadata.csv re-saved by Excel, `skinseg split` without lesion ids and with K folds, and options refused first."""
import os, shutil, time
from pathlib import Path
import pandas as pd
import pytest
from PIL import Image

from skinseg.core import SkinsegError
from skinseg.data import synthetic_dataset, find_pairs, scan_dataset, read_split, training_split, check_dataset
from conftest import run_skinseg, run_inprocess

@pytest.fixture(scope='module')
def syn(tmp_path_factory) -> Path:
    return synthetic_dataset(tmp_path_factory.mktemp('layouts')/'synth', n=12, size=(40, 56), seed=3)

def _copy_as(syn, dest:Path, img_dir, mask_dir, img_name='{}.jpg', mask_name='{}.png') -> Path:
    for p in sorted((syn/'images').iterdir()):
        (dest/img_dir).mkdir(parents=True, exist_ok=True); shutil.copy(p, dest/img_dir/img_name.format(p.stem))
        if mask_dir: (dest/mask_dir).mkdir(parents=True, exist_ok=True); shutil.copy(syn/'masks'/f'{p.stem}.png', dest/mask_dir/mask_name.format(p.stem))
    return dest

def test_demo_on_an_nnunet_dataset(tmp_path):
    "`skinseg demo` on nnU-Net's layout: the masks it writes are named by the image file (SYNTH_0003_0000), not the id."
    syn20 = synthetic_dataset(tmp_path/'synth', n=20, size=(40, 56), seed=3)  # the demo needs 20: 16 to train, a batch
    d = _copy_as(syn20, tmp_path/'Dataset001_Skin', 'imagesTr', 'labelsTr', img_name='{}_0000.png')
    r = run_inprocess('demo', '--data', d, '--out', tmp_path/'demo', '--n-images', 20, '--epochs', 1, '--size', 32, 32,
                      '--no-pretrained', '--quiet')
    assert r.returncode == 0, r.stderr
    masks = sorted(f.name for f in (tmp_path/'demo'/'masks').iterdir())
    assert masks and all(f.endswith('_0000_segmentation.png') for f in masks), masks
    assert (tmp_path/'demo'/'errors.png').is_file()

def test_isic2018_task2_task3_folders_beside_task1(syn, tmp_path):
    "Case 10: the Task 2 attribute masks and the Task 3 images and CSV are neither images nor masks; check exits 0."
    d = _copy_as(syn, tmp_path/'ISIC2018', 'ISIC2018_Task1-2_Training_Input', 'ISIC2018_Task1_Training_GroundTruth',
                 mask_name='{}_segmentation.png')
    t2, t3i, t3g = (d/n for n in ('ISIC2018_Task2_Training_GroundTruth_v3', 'ISIC2018_Task3_Training_Input', 'ISIC2018_Task3_Training_GroundTruth'))
    for f in (t2, t3i, t3g): f.mkdir()
    for p in sorted((syn/'masks').iterdir()):
        for a in ('globules', 'milia_like_cyst', 'negative_network', 'pigment_network', 'streaks'): shutil.copy(p, t2/f'{p.stem}_attribute_{a}.png')
    shutil.copy(next((syn/'images').iterdir()), t3i/'ISIC_0024306.jpg')  # a classification image, no mask anywhere
    (t3g/'ISIC2018_Task3_Training_GroundTruth.csv').write_text('image,MEL,NV\nISIC_0024306,0,1\n')
    scan = scan_dataset(d)
    assert scan.layout == 'ISIC Task 1' and len(scan.images) == 12 and len(scan.masks) == 12
    assert {p.parent.name for p in scan.images + scan.masks} == {'ISIC2018_Task1-2_Training_Input', 'ISIC2018_Task1_Training_GroundTruth'}
    r = run_inprocess('check', d, '--quiet')
    assert r.returncode == 0 and r.stdout.strip() == '12 pairs OK', r.stdout + r.stderr

def test_isic2017_part3_folder_beside_part1(syn, tmp_path):
    "ISIC 2017: the Part 3 ground truth (diagnosis CSV) beside Part 1 is not a mask folder."
    d = _copy_as(syn, tmp_path/'isic2017', 'ISIC-2017_Training_Data', 'ISIC-2017_Training_Part1_GroundTruth', mask_name='{}_segmentation.png')
    (d/'ISIC-2017_Training_Part3_GroundTruth').mkdir()
    (d/'ISIC-2017_Training_Part3_GroundTruth'/'ISIC-2017_Training_Part3_GroundTruth.csv').write_text('image_id,melanoma\n')
    assert scan_dataset(d).masks[0].parent.name == 'ISIC-2017_Training_Part1_GroundTruth' and check_dataset(d) == []

@pytest.mark.parametrize('given', ['PH2 Dataset images', 'PH2Dataset'])
def test_ph2_as_distributed(syn, tmp_path, given):
    "Case 12: PH2's IMDxxx/IMDxxx_Dermoscopic_Image + IMDxxx_lesion folders, from the image folder or its parent."
    root = tmp_path/'PH2Dataset'/'PH2 Dataset images'
    for i, p in enumerate(sorted((syn/'images').iterdir())[:4]):
        c = root/f'IMD{i:03d}'
        for sub in ('Dermoscopic_Image', 'lesion', 'roi'): (c/f'{c.name}_{sub}').mkdir(parents=True)
        Image.open(p).save(c/f'{c.name}_Dermoscopic_Image'/f'{c.name}.bmp')
        Image.open(syn/'masks'/f'{p.stem}.png').save(c/f'{c.name}_lesion'/f'{c.name}_lesion.bmp')
    (root.parent/'PH2_dataset.txt').write_text('|| Name || Clinical Diagnosis ||\n'); (root.parent/'PH2_dataset.xlsx').write_bytes(b'PK')
    d = tmp_path/'PH2Dataset' if given == 'PH2Dataset' else root
    df = find_pairs(d)
    assert df.attrs['layout'] == 'PH2' and df.image_id.tolist() == [f'IMD{i:03d}' for i in range(4)] and df['mask'].notna().all()
    r = run_inprocess('check', d, '--quiet')
    assert r.returncode == 0 and r.stdout.strip() == '4 pairs OK', r.stdout + r.stderr

def test_images_labels_layout(syn, tmp_path):
    "Case 11: images/ + labels/ (MONAI naming) pairs like images/ + masks/."
    d = _copy_as(syn, tmp_path/'ds', 'images', 'labels')
    assert find_pairs(d).attrs['layout'] == 'generic'
    r = run_inprocess('check', d, '--quiet')
    assert r.returncode == 0 and r.stdout.strip() == '12 pairs OK', r.stdout + r.stderr

def test_nnunet_layout(syn, tmp_path):
    "nnU-Net: imagesTr/case_0000.png pairs with labelsTr/case.png; imagesTs alone is read without masks."
    d = _copy_as(syn, tmp_path/'Dataset001_Skin', 'imagesTr', 'labelsTr', img_name='{}_0000.png')
    _copy_as(syn, d, 'imagesTs', None, img_name='{}_0000.png')
    df = find_pairs(d)
    assert df.attrs['layout'] == 'nnU-Net' and len(df) == 12 and df['mask'].notna().all() 
    assert df.image_id.tolist() == find_pairs(syn).image_id.tolist()  # SYNTH_0003_0000.png is SYNTH_0003
    assert run_inprocess('check', d, '--quiet').returncode == 0
    ts = _copy_as(syn, tmp_path/'test_only', 'imagesTs', None, img_name='{}_0000.png')
    assert find_pairs(ts)['mask'].isna().all()

@pytest.mark.parametrize('folder', ['gt', 'annotations', 'Segmentations'])
def test_unknown_layout_names_the_look_alike(syn, tmp_path, folder):
    "A mask folder under another name is named in the error, beside images/ or alone; one line, exit 2."
    d = _copy_as(syn, tmp_path/'ds', 'images', folder)
    r = run_inprocess('check', d, '--quiet')
    assert r.returncode == 2 and f'found {folder}/: rename it to masks/' in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    shutil.move(d/'images', d/'pictures')
    r = run_inprocess('check', d, '--quiet')
    assert r.returncode == 2 and 'unknown dataset layout: expected HAM10000' in r.stderr and f'found {folder}/' in r.stderr, r.stderr
    for name in ('PH2', 'nnU-Net', 'labels/'): assert name in r.stderr

@pytest.mark.parametrize('encoding,sep', [('utf-8-sig', ','), ('utf-16', ','), ('utf-8-sig', ';'), ('utf-16', '\t'), ('utf-8', '\t')])
def test_excel_metadata_keeps_lesion_ids(syn, tmp_path, encoding, sep):
    "Case 02: metadata.csv re-saved by Excel (BOM, UTF-16, semicolons) or Dataverse (tabs) keeps lesion_id; split is by lesion."
    d = shutil.copytree(syn, tmp_path/'ds')
    meta = pd.read_csv(syn/'metadata.csv', dtype=str)
    assert meta.lesion_id.nunique() < len(meta)
    (d/'metadata.csv').write_bytes(meta.to_csv(index=False, sep=sep, lineterminator='\r\n').encode(encoding))
    df = find_pairs(d)
    assert df.lesion_id.tolist() == find_pairs(syn).lesion_id.tolist()
    r = run_inprocess('split', d, '--out', tmp_path/'split.csv', '--valid-pct', '0.5')
    assert r.returncode == 0 and 'none on two sides' in r.stdout and 'warning' not in r.stderr, r.stdout + r.stderr

def test_split_without_lesion_ids_warns_once_plainly(syn, tmp_path):
    "Case 16: one plain warning line (no source line, even with Python's warnings shown) and 'split by image'."
    d = shutil.copytree(syn, tmp_path/'ds'); (d/'metadata.csv').unlink()
    r = run_skinseg('split', d, '--out', tmp_path/'split.csv', env={'PYTHONWARNINGS': 'default'})
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == ['skinseg split: warning: no lesion ids (no metadata with lesion_id): splitting by image, '
                                     'so images of one lesion may land on both sides'], r.stderr
    assert r.stdout.strip().endswith('no lesion ids: split by image') and 'none on two sides' not in r.stdout

def test_kfold_split_is_trainable(syn, tmp_path):
    "Case 09: `split --folds 3` writes a fold column; read_split and training_split take one fold of it, or say to pass one."
    r = run_inprocess('split', syn, '--folds', '3', '--out', tmp_path/'folds.csv')
    assert r.returncode == 0, r.stderr
    folds = pd.read_csv(tmp_path/'folds.csv')
    assert list(folds.columns) == ['image_id', 'lesion_id', 'dx', 'fold']
    for k in range(3):
        assert read_split(tmp_path/'folds.csv', fold=k).is_valid.tolist() == (folds.fold == k).tolist()
        df = training_split(syn, split_csv=tmp_path/'folds.csv', fold=k)
        assert df.set_index('image_id').is_valid.to_dict() == (folds.set_index('image_id').fold == k).to_dict()
    with pytest.raises(SkinsegError, match=r'this is a K-fold split \(3 folds\): pass --fold K \(0\.\.2\)'): read_split(tmp_path/'folds.csv')
    with pytest.raises(SkinsegError, match='fold 5 is out of range'): training_split(syn, split_csv=tmp_path/'folds.csv', fold=5)
    with pytest.raises(SkinsegError, match='fold -1 is out of range'): read_split(tmp_path/'folds.csv', fold=-1)

def test_masked_only(syn, tmp_path, capsys):
    "Images without masks: an error naming one and --masked-only; with masked_only=True, one stderr line and the rest."
    d = shutil.copytree(syn, tmp_path/'ds')
    for p in sorted((d/'masks').iterdir())[:3]: p.unlink()
    with pytest.raises(SkinsegError, match=r'no mask for this image \(3 images without masks; run skinseg check, or .*--masked-only\)'):
        training_split(d)
    df = training_split(d, masked_only=True)
    assert len(df) == 9 and df['mask'].notna().all() and df.attrs['unmasked'] == 3
    assert capsys.readouterr().err.splitlines() == [f'{d}: training on the 9 images with masks; left out 3 without (--masked-only)']

@pytest.mark.parametrize('args,msg', [(['--valid-pct', '1.5'], '--valid-pct must be between 0 and 1'), (['--folds', '1'], '--folds must be at least 2'),
                                      (['--out', '.'], '--out is a folder'), (['--out', 'no/such/dir/s.csv'], 'no such folder (for --out)')])
def test_split_options_checked_first(tmp_path, args, msg):
    "Bad `skinseg split` options are one line, exit 2, before the dataset folder is looked at (here it does not exist)."
    r = run_inprocess('split', tmp_path/'missing', *args)
    assert r.returncode == 2 and msg in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr

def test_check_workers_checked_first(tmp_path):
    r = run_inprocess('check', tmp_path/'missing', '--workers', '0')
    assert r.returncode == 2 and '--workers must be a whole number' in r.stderr, r.stderr

def test_folder_scanned_once(syn, tmp_path, monkeypatch):
    "A folder unchanged since its last scan is not listed again: find_pairs, check_dataset and training_split share one listing."
    d = shutil.copytree(syn, tmp_path/'ds')
    old = time.time() - 60
    for p in [d, *d.iterdir()]: os.utime(p, (old, old))
    calls, real = [], Path.iterdir
    def listing(folder):
        if folder.parent == d: calls.append(folder.name)
        return real(folder)
    monkeypatch.setattr(Path, 'iterdir', listing)
    find_pairs(d); check_dataset(d); training_split(d); find_pairs(str(d))
    assert len(calls) == 2, calls  # images/ and masks/, once each
    (d/'masks'/sorted(os.listdir(d/'masks'))[0]).unlink()
    assert find_pairs(d)['mask'].isna().sum() == 1 and len(calls) == 4
