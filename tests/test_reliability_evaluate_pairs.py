"""Reliability of how `skinseg evaluate` (and every verb that reads a dataset folder) pairs files: a full disk keeps
the earlier scores CSV, a prediction is paired only with its own id, the ground truth is never scored against itself,
an id with two masks (or two images) is refused in one line, and a broken link among the images is reported."""
import errno, shutil
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import run_inprocess, make_dataset
from test_reliability_cli import one_error_line, lesion_image

def square(h=10, w=10) -> np.ndarray:
    "A 0/255 mask with a square lesion."
    m = np.zeros((h, w), np.uint8); m[2:6, 2:6] = 255
    return m

def mask_folders(tmp_path, gt_names, pred_names) -> tuple:
    "Folders gt/ and pred/ holding a square mask under each name given: (gt, pred)."
    gt, pred = tmp_path/'gt', tmp_path/'pred'
    for d, names in ((gt, gt_names), (pred, pred_names)):
        d.mkdir()
        for n in names: Image.fromarray(square()).save(d/n)
    return gt, pred

def test_evaluate_disk_full_keeps_the_earlier_csv(tmp_path, monkeypatch):
    "A disk that fills while the scores are written leaves the earlier CSV whole, and the error names the CSV."
    gt, pred = mask_folders(tmp_path, ['a_segmentation.png', 'b_segmentation.png'], ['a_segmentation.png', 'b_segmentation.png'])
    out = tmp_path/'full'/'scores.csv'
    assert run_inprocess('evaluate', gt, pred, '--csv', out).returncode == 0
    before = out.read_text()
    def disk_full(self, path, *args, **kw):
        Path(path).write_text('image_id,dice,iou,isic\na,1')  # half a CSV, then the disk is full
        raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(pd.DataFrame, 'to_csv', disk_full)
    one_error_line(run_inprocess('evaluate', gt, pred, '--csv', out), 'evaluate', out, contains='No space left on device')
    assert out.read_text() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ['scores.csv']  # no temporary file left behind

def test_evaluate_pairs_a_prediction_only_with_its_own_id(tmp_path):
    "'lesion 7 (2)' is another id's prediction: 'lesion 7' is reported as missing, not scored against it."
    gt, pred = mask_folders(tmp_path, ['lesion 7_segmentation.png', 'lesion 8_segmentation.png'],
                            ['lesion 7 (2)_segmentation.png', 'lesion 8_segmentation.png'])
    r = run_inprocess('evaluate', gt, pred, '--csv', tmp_path/'s.csv')
    one_error_line(r, 'evaluate', pred/'lesion 7_segmentation.png', contains='prediction missing for lesion 7')
    assert not (tmp_path/'s.csv').exists()

def test_evaluate_refuses_the_ground_truth_as_predictions(tmp_path):
    "The ground-truth masks given as the predictions (a dataset's masks/, or the same folder twice) are refused, not scored Dice 1."
    data = make_dataset(tmp_path/'data', n=3)
    for gt in (data, data/'masks'):
        r = run_inprocess('evaluate', gt, data/'masks', '--csv', tmp_path/'s.csv')
        one_error_line(r, 'evaluate', data/'masks', contains='ground-truth masks themselves')
    assert not (tmp_path/'s.csv').exists()

@pytest.fixture
def dup_data(tmp_path) -> Path:
    "A synthetic dataset whose SYNTH_0001 has a second, blank mask SYNTH_0001_segmentation.png."
    data = make_dataset(tmp_path/'dup', n=6)
    Image.fromarray(np.zeros_like(np.asarray(Image.open(data/'masks'/'SYNTH_0001.png')))).save(data/'masks'/'SYNTH_0001_segmentation.png')
    return data

def test_duplicate_mask_refused_by_evaluate_split_and_train(dup_data, tmp_path):
    "An id with two masks is refused by every verb that reads the folder, in one line naming both files."
    masks = dup_data/'masks'
    pred = shutil.copytree(masks, tmp_path/'pred', ignore=shutil.ignore_patterns('*_segmentation.png'))
    runs = {'evaluate': ('evaluate', dup_data, pred, '--csv', tmp_path/'s.csv'),
            'split': ('split', dup_data, '--out', tmp_path/'split.csv'),
            'train': ('train', dup_data, '--out', tmp_path/'run', '--size', 32, 32, '--epochs', 1, '--encoder', 'resnet18',
                      '--no-pretrained', '--quiet')}
    for verb, args in runs.items():
        one_error_line(run_inprocess(*args), verb, masks/'SYNTH_0001_segmentation.png', masks/'SYNTH_0001.png',
                              contains='image id SYNTH_0001 has a second mask')
    assert not any((tmp_path/n).exists() for n in ('s.csv', 'split.csv', 'run'))

def test_duplicate_image_refused(tmp_path):
    "An id with two images (SYNTH_0002.jpg and .png) is refused, naming both, instead of one being dropped."
    data = make_dataset(tmp_path/'dup', n=4)
    shutil.copy(data/'images'/'SYNTH_0002.jpg', data/'images'/'SYNTH_0002.png')
    one_error_line(run_inprocess('split', data, '--out', tmp_path/'split.csv'), 'split', data/'images'/'SYNTH_0002.png',
                   data/'images'/'SYNTH_0002.jpg', contains='image id SYNTH_0002 has a second image')

def test_predict_reports_a_broken_link_in_a_folder(tiny_model_dir, tmp_path):
    "A broken link among a folder's images is reported as a failure, as `skinseg check` reports it, not skipped."
    folder = tmp_path/'images'; folder.mkdir()
    lesion_image().save(folder/'ISIC_0000001.jpg')
    (folder/'ISIC_0000002.jpg').symlink_to(tmp_path/'nowhere'/'ISIC_0000002.jpg')
    r = run_inprocess('predict', tiny_model_dir, folder, '--out', tmp_path/'out', '--quiet')
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert 'ISIC_0000002.jpg: file not found' in r.stderr, r.stderr
    assert [p.name for p in (tmp_path/'out').iterdir()] == ['ISIC_0000001_segmentation.png']
