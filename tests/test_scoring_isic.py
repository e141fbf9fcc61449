"""`skinseg evaluate` scores as the official ISIC scorer does (`isic-challenge-scoring`), on the same two folders.

The reference below restates the scorer's segmentation code (ImageMarkup/isic-challenge-scoring 5.6.0,
`isic_challenge_scoring/load_image.py`: `ImagePair.parse_image_id`, `find_prediction_file`,
`load_segmentation_image`, `iter_image_pairs`; `segmentation.py`: `SegmentationScore`, masks `> 128`;
`confusion.py`: `create_binary_confusion_matrix`; `metrics.py`: `binary_jaccard`, `binary_dice`,
`binary_threshold_jaccard` with threshold 0.65, and 1.0 when TP + FP + FN == 0). When the package itself is
installed, the last test compares with it too. The scorer reads only single-channel ('L' or '1') masks and binarises
them at > 128; skinseg reads more kinds (nbs/api/01_images.ipynb), so the folders here hold what both read."""
import json, re, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest
from PIL import Image, ImageDraw
from skinseg.metrics import evaluate_dirs

SKINSEG = str(Path(sys.executable).with_name('skinseg'))
NAMINGS = ['{}_segmentation.png', '{}.png', '{}_segmentation_prediction.png']

def isic_reference(truth_dir:Path, pred_dir:Path) -> pd.DataFrame:
    "Per-image dice, jaccard and threshold_jaccard as isic-challenge-scoring 5.6.0 computes them (see the module docstring)."
    rows = []
    for truth in sorted(truth_dir.iterdir()):
        if truth.name in {'ATTRIBUTION.txt', 'LICENSE.txt'}: continue
        image_id = re.search(r'ISIC_[0-9]{7}', truth.stem).group(0)
        number = image_id.split('_')[1]
        cands = [p for p in pred_dir.iterdir() if number in p.stem]
        assert len(cands) == 1, (image_id, cands)  # the scorer refuses none or several
        def load(p):
            im = Image.open(p); im = im.convert('L') if im.mode == '1' else im
            assert im.mode == 'L'; return np.asarray(im)
        t, p = load(truth) > 128, load(cands[0]) > 128
        tp, fp, fn = (t & p).sum(), (~t & p).sum(), (t & ~p).sum()
        j = 1.0 if tp + fp + fn == 0 else tp / (tp + fp + fn)
        d = 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
        rows.append(dict(image_id=image_id, dice=d, jaccard=j, threshold_jaccard=j if j >= 0.65 else 0.0))
    return pd.DataFrame(rows).set_index('image_id')

def ellipse(h, w, box) -> np.ndarray:
    im = Image.new('L', (w, h)); ImageDraw.Draw(im).ellipse(box, fill=255); return np.asarray(im)

@pytest.fixture(scope='module')
def isic_folders(tmp_path_factory):
    "12 ground-truth/prediction pairs: overlaps above and below 0.65, empty masks, a JPEG and a 1-bit prediction."
    root = tmp_path_factory.mktemp('isic'); gt, pred = root/'gt', root/'pred'; gt.mkdir(); pred.mkdir()
    rng = np.random.default_rng(7)
    for k in range(12):
        iid = f'ISIC_00{24306 + k:05d}'
        h, w = rng.integers(40, 90, 2)
        g = ellipse(h, w, (w * .2, h * .2, w * .8, h * .8))
        dx, dy, grow = rng.uniform(-.25, .25), rng.uniform(-.25, .25), rng.uniform(.6, 1.3)
        p = ellipse(h, w, (w * (.5 - .3 * grow + dx), h * (.5 - .3 * grow + dy), w * (.5 + .3 * grow + dx), h * (.5 + .3 * grow + dy)))
        if k == 0: g, p = np.zeros_like(g), np.zeros_like(p)  # nothing to find, nothing found
        if k == 1: p = np.zeros_like(p)                       # a lesion missed
        Image.fromarray(g).save(gt/f'{iid}_segmentation.png')
        name = NAMINGS[k % 3].format(iid)
        if k == 5: Image.fromarray(p).save(pred/name.replace('.png', '.jpg'), quality=90)  # JPEG noise, binarised > 128
        elif k == 6: Image.fromarray(p).convert('1').save(pred/name)
        else: Image.fromarray(p).save(pred/name)
    return gt, pred

def test_same_scores_as_the_isic_scorer(isic_folders):
    "Per-image Dice, Jaccard and threshold Jaccard, and their means, equal the scorer's; every naming is paired."
    ref = isic_reference(*isic_folders)
    assert (ref.threshold_jaccard == 0).sum() >= 2 and (ref.threshold_jaccard > 0).sum() >= 2  # both sides of 0.65
    summary, df = evaluate_dirs(*isic_folders)
    df = df.set_index('image_id').loc[ref.index]
    assert summary['n'] == len(ref) == 12
    np.testing.assert_allclose(df.dice, ref.dice, rtol=0, atol=1e-12)
    np.testing.assert_allclose(df.iou, ref.jaccard, rtol=0, atol=1e-12)
    np.testing.assert_allclose(df.threshold_jaccard, ref.threshold_jaccard, rtol=0, atol=1e-12)
    for ours, theirs in [('dice', 'dice'), ('iou', 'jaccard'), ('threshold_jaccard', 'threshold_jaccard')]:
        assert summary[ours] == pytest.approx(ref[theirs].mean(), abs=1e-12)

@pytest.mark.parametrize('naming', NAMINGS)
def test_cli_pairs_every_prediction_name(tmp_path, naming):
    "`skinseg evaluate` scores a folder of predictions named in any of the ISIC styles (not only `_segmentation`)."
    gt, pred = tmp_path/'gt', tmp_path/'pred'; gt.mkdir(); pred.mkdir()
    m = ellipse(30, 40, (8, 6, 32, 24))
    for i in range(3):
        Image.fromarray(m).save(gt/f'ISIC_002430{i}_segmentation.png'); Image.fromarray(m).save(pred/naming.format(f'ISIC_002430{i}'))
    r = subprocess.run([SKINSEG, 'evaluate', str(gt), str(pred), '--csv', str(tmp_path/'s.csv')], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out['n'] == 3 and out['dice'] == 1 and out['threshold_jaccard'] == 1

def test_same_scores_as_the_installed_scorer(isic_folders):
    "When isic-challenge-scoring is installed, its macro averages equal skinseg's."
    scoring = pytest.importorskip('isic_challenge_scoring.segmentation')
    theirs = scoring.SegmentationScore.from_dir(*isic_folders).macro_average
    summary, _ = evaluate_dirs(*isic_folders)
    assert summary['dice'] == pytest.approx(theirs['dice'], abs=1e-12)
    assert summary['iou'] == pytest.approx(theirs['jaccard'], abs=1e-12)
    assert summary['threshold_jaccard'] == pytest.approx(theirs['threshold_jaccard'], abs=1e-12)
