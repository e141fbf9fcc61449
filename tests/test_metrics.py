"Per-image Dice / IoU / ISIC score, global IoU, the fastai metrics and `skinseg evaluate`, on hand-computed cases."
import json, subprocess, sys
from pathlib import Path
from types import SimpleNamespace
import numpy as np, pandas as pd, pytest, torch
from PIL import Image
from skinseg.core import SkinsegError
from skinseg.metrics import mask_scores, summarize_scores, PerImageMetric, GlobalIoU, evaluate_dirs

SKINSEG = str(Path(sys.executable).with_name('skinseg'))

def square(h=10, w=10, box=(2, 6, 2, 6), value=255):
    m = np.zeros((h, w), np.uint8); y0, y1, x0, x1 = box; m[y0:y1, x0:x1] = value; return m

def test_hand_computed_scores():
    gt = square(box=(0, 4, 0, 4))            # 16 px
    pr = square(box=(0, 4, 2, 6))            # 16 px, 8 shared: IoU 8/24, Dice 16/32
    s = mask_scores(pr, gt)
    assert s['inter'].item() == 8 and s['union'].item() == 24
    assert s['iou'].item() == pytest.approx(1/3) and s['dice'].item() == pytest.approx(0.5)
    assert s['isic'].item() == 0             # 1/3 < 0.65

def test_empty_masks():
    e, g = np.zeros((5, 5), np.uint8), square(5, 5, (1, 3, 1, 3))
    s = mask_scores(np.stack([e, e, g]), np.stack([e, g, e]))
    for k in ('dice', 'iou', 'isic'): assert s[k].tolist() == [1, 0, 0]

def test_isic_threshold_and_binarisation():
    gt = np.zeros((1, 100), np.uint8); gt[0, :100] = 255
    pr = np.zeros((1, 100), np.uint8); pr[0, :65] = 200; pr[0, 65:] = 128   # 128 is background
    assert mask_scores(pr, gt)['isic'].item() == pytest.approx(0.65)
    pr[0, 64] = 0
    assert mask_scores(pr, gt)['isic'].item() == 0
    assert mask_scores(pr // 200, gt // 255)['iou'].item() == pytest.approx(0.64)   # 0/1 masks

def test_per_image_mean_differs_from_global():
    gt = np.stack([square(20, 20, (0, 18, 0, 18)), square(20, 20, (19, 20, 19, 20))])
    pr = gt.copy(); pr[1] = 0
    r = summarize_scores(mask_scores(pr, gt))
    assert r['n'] == 2 and r['iou'] == pytest.approx(0.5) and r['global_iou'] == pytest.approx(324 / 325)

def test_fastai_metrics_average_over_images_not_batches():
    def logits(m): return torch.stack([~m, m], 1).float()
    batches = [(torch.ones(3, 4, 4, dtype=torch.long), torch.ones(3, 4, 4, dtype=torch.bool)),   # 3 perfect
               (torch.ones(1, 4, 4, dtype=torch.long), torch.zeros(1, 4, 4, dtype=torch.bool))]  # 1 missed
    m, g = PerImageMetric('iou'), GlobalIoU()
    for met in (m, g):
        met.reset()
        for t, p in batches: met.accumulate(SimpleNamespace(pred=logits(p), y=t))
    assert m.value == pytest.approx(3 / 4)       # batch means would give (1 + 0) / 2
    assert g.value == pytest.approx(48 / 64)

@pytest.fixture
def folders(tmp_path):
    gt, pred = tmp_path/'gt', tmp_path/'pred'; gt.mkdir(); pred.mkdir()
    cases = {'ISIC_1': (square(), square()), 'ISIC_2': (square(), square(box=(2, 6, 2, 4))),
             'ISIC_3': (np.zeros((10, 10), np.uint8), np.zeros((10, 10), np.uint8))}
    for i, (g, p) in cases.items():
        Image.fromarray(g).save(gt/f'{i}_segmentation.png'); Image.fromarray(p).save(pred/f'{i}_segmentation.png')
    return gt, pred

def test_evaluate_dirs(folders, tmp_path):
    summary, df = evaluate_dirs(*folders, tmp_path/'s.csv')
    assert summary['n'] == 3 and summary['iou'] == pytest.approx(2.5 / 3) and summary['isic'] == pytest.approx(2 / 3)
    assert summary['global_iou'] == pytest.approx(24 / 32)
    assert pd.read_csv(tmp_path/'s.csv').set_index('image_id').loc['ISIC_2', 'dice'] == pytest.approx(2 * 8 / 24)

def test_evaluate_dirs_errors_name_the_file(folders):
    gt, pred = folders
    (pred/'ISIC_3_segmentation.png').unlink()
    with pytest.raises(SkinsegError, match='ISIC_3_segmentation.png: prediction missing'): evaluate_dirs(gt, pred)
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(pred/'ISIC_3_segmentation.png')
    with pytest.raises(SkinsegError, match='ISIC_3_segmentation.png: size 12x10 differs'): evaluate_dirs(gt, pred)

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
