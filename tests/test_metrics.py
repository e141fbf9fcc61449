"`skinseg evaluate` run as a user runs it, and `evaluate_dirs` on a dataset folder (the scores' contract: nbs/api/10_metrics.ipynb)."
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

# ## Issue 14: real users' ground-truth folders (cases 01, 04, 06, 17 of ../shared/inputs) and evaluate's arguments

from conftest import run_inprocess

def _error_line(r, *names) -> str:
    "The one `skinseg evaluate: error:` line of a failed run (exit 2), which names `names`."
    lines = [l for l in r.stderr.splitlines() if l.startswith('skinseg evaluate: error:')]
    assert r.returncode == 2 and len(lines) == 1, (r.returncode, r.stderr)
    for n in names: assert str(n) in lines[0], lines[0]
    return lines[0]

def test_cli_dataset_with_images_without_ground_truth(tmp_path):
    "Case 04: an ISIC 2018 folder where one image has no mask yet: the two masked ones are scored, one line says so."
    d = tmp_path/'ISIC2018'; inp, gt = d/'ISIC2018_Task1-2_Validation_Input', d/'ISIC2018_Task1_Validation_GroundTruth'
    inp.mkdir(parents=True); gt.mkdir(); (tmp_path/'pred').mkdir()
    for i in range(3):
        Image.fromarray(np.dstack([255 - square(48, 64, (12, 36, 16, 48)) // 2] * 3)).save(inp/f'ISIC_001000{i}.jpg')
        Image.fromarray(square(48, 64, (12, 36, 16, 48))).save(tmp_path/'pred'/f'ISIC_001000{i}_segmentation.png')
        if i < 2: Image.fromarray(square(48, 64, (12, 36, 16, 48))).save(gt/f'ISIC_001000{i}_segmentation.png')
    r = subprocess.run([SKINSEG, 'evaluate', str(d), str(tmp_path/'pred'), '--csv', str(tmp_path/'s.csv')], capture_output=True, text=True)
    assert r.returncode == 0 and 'Traceback' not in r.stderr, r.stderr
    out = json.loads(r.stdout)
    assert out['n'] == 2 and out['dice'] == 1 and out['without_ground_truth'] == 1
    assert r.stderr.strip() == 'skinseg evaluate: 1 image without ground truth left out (not scored): ISIC_0010002'
    assert len(pd.read_csv(tmp_path/'s.csv')) == 2

@pytest.mark.parametrize('gt_name', ['{}_Segmentation.png', '{}_segmentation.jpg', '{}_segmentation.bmp', '{}.png', '{}_mask.tif'])
def test_cli_plain_gt_folder_any_name_and_format(tmp_path, gt_name):
    "Cases 06 and 17: ISIC 2016's capital S, and .jpg/.bmp/.tif masks in a plain folder, are all scored (Dice 1)."
    gt, pred = tmp_path/'gt', tmp_path/'pred'; gt.mkdir(); pred.mkdir()
    m = square(48, 64, (12, 36, 16, 48))
    for i in range(2):
        f = gt/gt_name.format(f'ISIC_000000{i}')
        Image.fromarray(m).save(f, **({'quality': 95} if f.suffix == '.jpg' else {}))
        Image.fromarray(m).save(pred/f'ISIC_000000{i}_segmentation.png')
    r = run_inprocess('evaluate', gt, pred, '--csv', tmp_path/'s.csv')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)['n'] == 2 and json.loads(r.stdout)['dice'] == 1

def test_cli_palette_ground_truth(tmp_path):
    "Case 01: VOC-style palette masks (index 1 = lesion, dark red) score Dice 1 against a perfect 0/255 prediction."
    gt, pred = tmp_path/'gt', tmp_path/'pred'; gt.mkdir(); pred.mkdir()
    m = square(48, 64, (12, 36, 16, 48))
    p = Image.fromarray(m // 255, 'P'); p.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762); p.save(gt/'ISIC_0000000_segmentation.png')
    Image.fromarray(m).save(pred/'ISIC_0000000_segmentation.png')
    r = run_inprocess('evaluate', gt, pred, '--csv', tmp_path/'s.csv')
    assert r.returncode == 0 and json.loads(r.stdout)['dice'] == 1, r.stderr

def test_cli_area_ratio(folders, tmp_path):
    "Issue 15: the CSV has each image's area ratio (pred/true; 1 when both are empty), the summary its median."
    gt, pred = folders
    Image.fromarray(square(box=(2, 8, 2, 6))).save(pred/'ISIC_1_segmentation.png')  # 24 pixels for 16: ratio 1.5
    r = run_inprocess('evaluate', gt, pred, '--csv', tmp_path/'s.csv')
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(tmp_path/'s.csv').set_index('image_id')
    assert df.area_ratio.to_dict() == {'ISIC_1': 1.5, 'ISIC_2': 0.5, 'ISIC_3': 1.0}
    assert json.loads(r.stdout)['median_area_ratio'] == 1.0

def test_cli_validates_arguments_first(folders, tmp_path):
    "Missing folders, a file for a folder, an unreadable split and a folder for --csv: one named line, nothing written."
    gt, pred = folders
    _error_line(run_inprocess('evaluate', tmp_path/'nowhere', pred, '--csv', tmp_path/'s.csv'), tmp_path/'nowhere', 'folder not found')
    _error_line(run_inprocess('evaluate', gt, gt/'ISIC_1_segmentation.png', '--csv', tmp_path/'s.csv'), 'ISIC_1_segmentation.png', 'not a folder')
    _error_line(run_inprocess('evaluate', gt, pred, '--csv', tmp_path/'s.csv', '--split', tmp_path/'no.csv'), tmp_path/'no.csv')
    _error_line(run_inprocess('evaluate', gt, pred, '--csv', tmp_path), tmp_path, 'is a folder')
    assert not (tmp_path/'s.csv').exists()

def test_cli_ambiguous_masks_refused_by_name(folders, tmp_path):
    "A soft (grey) prediction and a VOC mask with a void border are refused, naming the file, not scored wrong."
    gt, pred = folders
    Image.fromarray(np.tile(np.arange(10, dtype=np.uint8) * 25, (10, 1))).save(pred/'ISIC_2_segmentation.png')
    _error_line(run_inprocess('evaluate', gt, pred, '--csv', tmp_path/'s.csv'), 'ISIC_2_segmentation.png', 'not a binary mask')
    Image.fromarray(square()).save(pred/'ISIC_2_segmentation.png')
    idx = square() // 255; idx[1] = 255
    p = Image.fromarray(idx, 'P'); p.putpalette([0, 0, 0, 128, 0, 0] + [0] * 759 + [224, 224, 192]); p.save(gt/'ISIC_1_segmentation.png')
    _error_line(run_inprocess('evaluate', gt, pred, '--csv', tmp_path/'s.csv'), 'ISIC_1_segmentation.png', "VOC 'void'")

def test_cli_evaluate_one_fold_of_a_kfold_split(tmp_path):
    "`skinseg evaluate --split folds.csv --fold K` scores fold K's images; without --fold the K-fold CSV is refused by name."
    import json, shutil
    from conftest import run_inprocess, make_dataset
    d = make_dataset(tmp_path/'data', n=9); pred = tmp_path/'pred'; pred.mkdir()
    for p in (d/'masks').iterdir(): shutil.copy(p, pred/f'{p.stem}_segmentation.png')
    assert run_inprocess('split', d, '--folds', '3', '--out', tmp_path/'folds.csv').returncode == 0
    folds = __import__('pandas').read_csv(tmp_path/'folds.csv')
    r = run_inprocess('evaluate', d, pred, '--split', tmp_path/'folds.csv', '--fold', 1, '--csv', tmp_path/'s.csv')
    assert r.returncode == 0 and json.loads(r.stdout)['n'] == int((folds.fold == 1).sum())
    r = run_inprocess('evaluate', d, pred, '--split', tmp_path/'folds.csv', '--csv', tmp_path/'s.csv')
    assert r.returncode == 2 and 'folds.csv: this is a K-fold split' in r.stderr

# ## Review of evaluate: the scores never overwrite an input; lists, not strings; probability maps are not predictions

def test_cli_never_writes_scores_over_an_input(folders, tmp_path):
    "`--csv` naming the split CSV, a mask, or a user's file is refused in one line; an earlier scores CSV is replaced."
    from conftest import run_inprocess
    gt, pred = folders
    split = tmp_path/'s.csv'; split.write_text('image_id,is_valid\nISIC_1,True\nISIC_2,True\nISIC_3,False\n')
    notes = tmp_path/'notes.txt'; notes.write_text('my notes\n')
    inputs = {p: p.read_bytes() for p in [split, notes, gt/'ISIC_1_segmentation.png', pred/'ISIC_2_segmentation.png']}
    for out, says in [(split, '--csv names the --split file'), (notes, 'is not a scores CSV'),
                      (gt/'ISIC_1_segmentation.png', 'is not a scores CSV'), (pred/'ISIC_2_segmentation.png', 'is not a scores CSV')]:
        _error_line(run_inprocess('evaluate', gt, pred, '--split', split, '--csv', out), out, says)
    assert {p: p.read_bytes() for p in inputs} == inputs
    for _ in range(2): assert run_inprocess('evaluate', gt, pred, '--split', split, '--csv', tmp_path/'scores.csv').returncode == 0
    assert len(pd.read_csv(tmp_path/'scores.csv')) == 2

def test_cli_missing_prediction_beside_a_probability_map(folders, tmp_path):
    "With `skinseg predict --probs` output, a missing mask is reported missing, not scored (or refused) from its `_prob.png`."
    from conftest import run_inprocess
    gt, pred = folders
    for i in ('ISIC_1', 'ISIC_2', 'ISIC_3'): Image.fromarray(np.full((10, 10), 200, np.uint8)).save(pred/f'{i}_prob.png')
    assert json.loads(run_inprocess('evaluate', gt, pred, '--csv', tmp_path/'s.csv').stdout)['n'] == 3
    (pred/'ISIC_1_segmentation.png').unlink()
    _error_line(run_inprocess('evaluate', gt, pred, '--csv', tmp_path/'s.csv'), pred/'ISIC_1_segmentation.png', 'prediction missing for ISIC_1')

def test_cli_scores_only_the_predicted_images_when_asked(folders, tmp_path):
    "A learner who predicted two of a dataset's images scores them with --predicted-only, told how many were left out."
    gt, pred = folders
    (pred/'ISIC_1_segmentation.png').unlink()
    r = run_inprocess('evaluate', gt, pred, '--csv', tmp_path/'s.csv')
    assert r.returncode == 2 and 'to score only the predicted ones, add --predicted-only' in r.stderr
    r = run_inprocess('evaluate', gt, pred, '--csv', tmp_path/'s.csv', '--predicted-only')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)['n'] == 2 and json.loads(r.stdout)['not_predicted'] == 1
    assert 'skinseg evaluate: 1 image with ground truth but no prediction left out (--predicted-only): ISIC_1' in r.stderr

def test_strings_where_lists_belong_and_masks_of_two_sizes(folders):
    "A folder name or id string given for a list, and a list of masks of two sizes, are refused in one line naming them."
    from skinseg.metrics import mask_scores, per_image_scores
    from skinseg.basics import SkinsegError
    gt, pred = folders
    with pytest.raises(SkinsegError, match="gts must be a list, got the single str"): per_image_scores(str(gt), str(pred))
    with pytest.raises(SkinsegError, match="preds must be a list, got the single PosixPath"): per_image_scores([square()], pred)
    with pytest.raises(SkinsegError, match="ids must be a list, got the single str 'ISIC_1'"): evaluate_dirs(gt, pred, ids='ISIC_1')
    with pytest.raises(SkinsegError, match=r"prediction: masks of different shapes \(10, 10\), \(5, 5\) cannot be one batch"):
        mask_scores([square(), square(5, 5, (1, 3, 1, 3))], [square(), square()])
