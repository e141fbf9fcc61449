"`skinseg evaluate` run as a user runs it, and `evaluate_dirs` on a dataset folder (the scores' contract: nbs/api/08_metrics.ipynb)."
import json, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest
from PIL import Image
from skinseg.metrics import evaluate_dirs

SKINSEG = str(Path(sys.executable).with_name('skinseg'))

def square(h=10, w=10, box=(2, 6, 2, 6), value=255):
    m = np.zeros((h, w), np.uint8); y0, y1, x0, x1 = box; m[y0:y1, x0:x1] = value; return m

@pytest.fixture
def folders(tmp_path):
    gt, pred = tmp_path/'gt', tmp_path/'pred'; gt.mkdir(); pred.mkdir()
    cases = {'ISIC_1': (square(), square()), 'ISIC_2': (square(), square(box=(2, 6, 2, 4))),
             'ISIC_3': (np.zeros((10, 10), np.uint8), np.zeros((10, 10), np.uint8))}
    for i, (g, p) in cases.items():
        Image.fromarray(g).save(gt/f'{i}_segmentation.png'); Image.fromarray(p).save(pred/f'{i}_segmentation.png')
    return gt, pred

def test_evaluate_on_a_dataset_folder(tmp_path):
    from skinseg.data import synthetic_dataset, find_pairs
    data = synthetic_dataset(tmp_path/'data', n=4)
    pred = tmp_path/'pred'; pred.mkdir()
    for _, r in find_pairs(data).iterrows():
        Image.open(r['mask']).save(pred/f'{r.image_id}_segmentation.png')
    summary, _ = evaluate_dirs(data, pred)
    assert summary['n'] == 4 and summary['iou'] == 1 and summary['dice'] == 1

def test_cli_prints_json_and_writes_csv(folders, tmp_path):
    r = subprocess.run([SKINSEG, 'evaluate', *map(str, folders), '--csv', str(tmp_path/'c.csv')], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out['n'] == 3 and out['iou'] == pytest.approx(2.5 / 3) and len(pd.read_csv(tmp_path/'c.csv')) == 3
    (folders[1]/'ISIC_1_segmentation.png').unlink()
    r = subprocess.run([SKINSEG, 'evaluate', *map(str, folders)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and 'ISIC_1_segmentation.png: prediction missing' in r.stderr
