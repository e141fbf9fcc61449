"""`skinseg train` and `skinseg demo` never replace what a user keeps in --out: a split or log of their own, their masks
(or the dataset's ground truth); and a run that replaces a model (--overwrite) keeps the old one until the new one is saved."""
import shlex, shutil
from pathlib import Path
import pandas as pd
import pytest
from fastai.learner import Learner
from fastai.callback.core import Callback

from skinseg.basics import written_by_skinseg
from skinseg.core import load_model, WEIGHTS_NAME
from conftest import run_inprocess, make_dataset
from test_reliability_cli import one_error_line, TRAIN_FAST

DEMO_FAST = ['--n-images', '24', '--epochs', '1', '--size', '32', '32', '--no-pretrained', '--quiet']

@pytest.fixture
def train_data(tmp_path) -> Path: return make_dataset(tmp_path/'train data', n=8, size=(32, 40))

class Stop(Callback):
    "Raise KeyboardInterrupt (Ctrl-C) during the first epoch, before anything of it is saved, or right after it is."
    def __init__(self, saved:bool=False): self.saved = saved
    order = 90  # after TrainTracker
    def after_train(self):
        if not self.saved: raise KeyboardInterrupt('Ctrl-C during the first epoch')
    def after_epoch(self):
        if self.saved: raise KeyboardInterrupt('Ctrl-C after the first epoch was saved')

def stop_runs(monkeypatch, saved:bool=False):
    "Make every training run in this test stop as `Stop(saved)` does."
    fit = Learner.fit
    monkeypatch.setattr(Learner, 'fit', lambda self, *a, cbs=None, **kw: fit(self, *a, cbs=list(cbs or []) + [Stop(saved)], **kw))

def files(folder:Path, but=()) -> dict: return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name not in but}

# ## train: a split.csv or log.csv of the user's own in --out

def test_train_keeps_a_fold_csv_and_a_log_of_the_users(train_data, tmp_path):
    "A 3-fold CSV written as --out's split.csv, then a log.csv of the user's own: each refused by name, kept; --overwrite keeps the log aside."
    out = tmp_path/'exp'; out.mkdir()
    assert run_inprocess('split', train_data, '--folds', 3, '--out', out/'split.csv').returncode == 0
    folds = (out/'split.csv').read_bytes()
    one_error_line(run_inprocess('train', train_data, '--out', out, *TRAIN_FAST, '--quiet'), 'train', out/'split.csv',
                   contains='already exists and is not the split this run makes')
    assert files(out) == {'split.csv': folds}
    (out/'split.csv').rename(tmp_path/'folds.csv'); (out/'log.csv').write_text('date,note\n2026-12-01,lr 1e-3 too high\n')
    one_error_line(run_inprocess('train', train_data, '--out', out, *TRAIN_FAST, '--quiet'), 'train', out/'log.csv',
                   contains='already exists and is not a log of skinseg train')
    assert files(out) == {'log.csv': b'date,note\n2026-12-01,lr 1e-3 too high\n'}
    r = run_inprocess('train', train_data, '--out', out, *TRAIN_FAST, '--quiet', '--overwrite')
    assert r.returncode == 0, r.stderr[-2000:]
    assert pd.read_csv(out/'log.csv').epoch.tolist() == [0] and (out/WEIGHTS_NAME).is_file()
    assert (out/'log.previous.csv').read_bytes() == b'date,note\n2026-12-01,lr 1e-3 too high\n'
    assert r.stderr.count(f"skinseg train: warning: {out/'log.csv'} is not a log of skinseg train: --overwrite keeps it as log.previous.csv") == 1, r.stderr

def test_train_names_every_file_of_the_users_it_would_replace(train_data, tmp_path):
    "A split.csv, log.csv and config.json of the user's in --out: one line names all three; --overwrite keeps each aside under a new name, other files as they were."
    out = tmp_path/'mine'; out.mkdir()
    mine = {'config.json': b'{"mine": 1}', 'log.csv': b'my notes\n', 'split.csv': b'image_id,fold\na,0\n', 'notes.txt': b'keep me'}
    for n, b in mine.items(): (out/n).write_bytes(b)
    msg = one_error_line(run_inprocess('train', train_data, '--out', out, *TRAIN_FAST, '--quiet'), 'train', out/'split.csv',
                         contains='move them out of --out, pass --overwrite to have train keep them aside')
    assert str(out/'log.csv') in msg and str(out/'config.json') in msg, msg
    assert files(out) == mine
    r = run_inprocess('train', train_data, '--out', out, *TRAIN_FAST, '--quiet', '--overwrite')
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out/'notes.txt').read_bytes() == b'keep me' and (out/WEIGHTS_NAME).is_file()
    assert {n: (out/n).read_bytes() for n in ('config.previous.json', 'log.previous.csv', 'split.previous.csv')} == {
        'config.previous.json': mine['config.json'], 'log.previous.csv': mine['log.csv'], 'split.previous.csv': mine['split.csv']}

def test_overwrite_keeps_a_split_edited_by_hand(train_data, tmp_path):
    """After a run, the user edits its split.csv by hand; `train --overwrite` (without --split) keeps the edit as
    split.previous.csv and says so in one line. The old run's own split, unedited, is simply replaced."""
    out = tmp_path/'run'
    assert run_inprocess('train', train_data, '--out', out, *TRAIN_FAST, '--quiet').returncode == 0
    edited = (out/'split.csv').read_text().replace('False', 'True', 1)
    (out/'split.csv').write_text(edited)
    r = run_inprocess('train', train_data, '--out', out, *TRAIN_FAST, '--quiet', '--overwrite')
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out/'split.previous.csv').read_text() == edited != (out/'split.csv').read_text()
    assert r.stderr == (f"skinseg train: warning: {out/'split.csv'} is not the split this run makes: "
                        "--overwrite keeps it as split.previous.csv and writes its own split.csv\n"), r.stderr
    r = run_inprocess('train', train_data, '--out', out, *TRAIN_FAST, '--seed', 3, '--quiet', '--overwrite')
    assert r.returncode == 0 and r.stderr == '', r.stderr[-2000:]
    assert sorted(p.name for p in out.glob('*.previous*')) == ['split.previous.csv']

def test_train_starts_again_after_a_stop_in_its_first_epoch(train_data, tmp_path, monkeypatch):
    """Stopped before its first checkpoint, a run leaves no split; the same command then trains with no --overwrite,
    also over the split.csv an older skinseg wrote at the start of such a run."""
    out = tmp_path/'run'
    stop_runs(monkeypatch)
    r = run_inprocess('train', train_data, '--out', out, *TRAIN_FAST, '--quiet')
    assert r.returncode == 130 and r.stderr == f"skinseg train: interrupted: no epoch of this run was saved in {out}: the same command starts it again\n", r.stderr[-2000:]
    assert sorted(files(out)) == ['log.csv'], "the stopped run left a split with no checkpoint"
    monkeypatch.undo()
    from skinseg.train import split_text
    from skinseg.splits import training_split
    (out/'split.csv').write_text(split_text(training_split(train_data)))  # as an older skinseg left it
    r = run_inprocess('train', train_data, '--out', out, *TRAIN_FAST, '--quiet')
    assert r.returncode == 0, r.stderr[-2000:]
    assert pd.read_csv(out/'log.csv').epoch.tolist() == [0] and (out/WEIGHTS_NAME).is_file()

# ## train --overwrite: the old model stays until the new one is saved

def test_overwrite_stopped_in_its_first_epoch_keeps_the_old_model(train_data, tmp_path, monkeypatch):
    """Ctrl-C in the first epoch of an --overwrite run: the old model, config, checkpoint, split, log and export are all still there.
    Stopped once its first epoch is saved, the new run is there whole (model, checkpoint, its own split): --resume finishes it."""
    out = tmp_path/'run'
    assert run_inprocess('train', train_data, '--out', out, *TRAIN_FAST, '--quiet').returncode == 0
    (out/'model.onnx').write_bytes(b'the old run, exported')
    old = files(out)
    stop_runs(monkeypatch)
    r = run_inprocess('train', train_data, '--out', out, *TRAIN_FAST, '--seed', 3, '--overwrite', '--quiet')
    assert r.returncode == 130 and 'interrupted' in r.stderr, r.stderr[-2000:]
    assert files(out) == old
    assert load_model(out)[1]['training']['run']['seed'] == 42  # the old model, usable
    monkeypatch.undo(); stop_runs(monkeypatch, saved=True)
    r = run_inprocess('train', train_data, '--out', out, '--epochs', 2, *TRAIN_FAST[2:], '--seed', 3, '--valid-pct', 0.4, '--overwrite', '--quiet')
    resume = f"skinseg train {shlex.quote(str(train_data))} --out {out} --resume"
    assert r.returncode == 130 and r.stderr == f"skinseg train: interrupted: 1 of 2 epochs saved in {out}: continue with {resume}\n", r.stderr[-2000:]
    monkeypatch.undo()
    from skinseg.train import read_checkpoint, split_text
    from skinseg.splits import training_split
    assert read_checkpoint(out/'checkpoint.safetensors')[1]['epoch'] == 1 and not (out/'model.onnx').exists()
    assert (out/'split.csv').read_text() == split_text(training_split(train_data, 0.4, 3)) != old['split.csv'].decode()
    r = run_inprocess(*shlex.split(resume)[1:], '--quiet')  # the command the message gave
    assert r.returncode == 0, r.stderr[-2000:]
    assert pd.read_csv(out/'log.csv').epoch.tolist() == [0, 1] and load_model(out)[1]['training']['run']['seed'] == 3

# ## demo: --out is the dataset, or holds masks of the user's own

def test_demo_into_the_dataset_folder_is_refused(tmp_path):
    "`demo --data ds --out ds` would write its predictions over ds/masks and score them against themselves: refused, even with --overwrite."
    data = make_dataset(tmp_path/'ds3', n=24)
    before = files(data/'masks')
    for extra in ([], ['--overwrite']):
        one_error_line(run_inprocess('demo', '--data', data, '--out', data, *DEMO_FAST, *extra), 'demo', data/'masks',
                       contains='holds the ground-truth masks of --data')
    assert files(data/'masks') == before and not (data/'model').exists()

def test_demo_keeps_the_users_masks_and_results(tmp_path):
    "Masks of the user's own in --out/masks are refused (with --overwrite too), a picture of theirs unless --overwrite."
    data, out = make_dataset(tmp_path/'ds', n=24), tmp_path/'out'
    shutil.copytree(data/'masks', out/'masks'); (out/'errors.png').write_bytes(b'my picture')
    for extra in ([], ['--overwrite']):
        one_error_line(run_inprocess('demo', '--data', data, '--out', out, *DEMO_FAST, *extra), 'demo', out/'masks',
                       contains='was not written by skinseg (nor were 23 more files there)')
    assert files(out/'masks') == files(data/'masks')
    shutil.rmtree(out/'masks')
    one_error_line(run_inprocess('demo', '--data', data, '--out', out, *DEMO_FAST), 'demo', out/'errors.png', contains='pass --overwrite to replace it')
    assert files(out) == {'errors.png': b'my picture'}
    r = run_inprocess('demo', '--data', data, '--out', out, *DEMO_FAST, '--overwrite')
    assert r.returncode == 0, r.stderr[-2000:]
    assert written_by_skinseg(out/'errors.png') and all(written_by_skinseg(f) for f in (out/'masks').iterdir())

def test_demo_keeps_a_scores_csv_of_the_users_before_training(tmp_path):
    "A scores.csv in --out that is not a skinseg scores CSV is refused with --overwrite too, before any training, and kept."
    data, out = make_dataset(tmp_path/'ds', n=24), tmp_path/'out'
    out.mkdir(); (out/'scores.csv').write_text('patient,comment\nA,keep me\n')
    one_error_line(run_inprocess('demo', '--data', data, '--out', out, *DEMO_FAST, '--overwrite'), 'demo', out/'scores.csv',
                   contains='is not a scores CSV of skinseg: refusing to write over it; choose another --out')
    assert files(out) == {'scores.csv': b'patient,comment\nA,keep me\n'}  # nothing trained, nothing written

def test_ctrl_c_while_an_epoch_is_saved_waits_for_its_checkpoint(train_data, tmp_path, monkeypatch):
    """A Ctrl-C just after an epoch's model was written left that model without its checkpoint: the same command and
    --resume were then both refused. Now the Ctrl-C waits until the checkpoint is written too, and --resume finishes the run."""
    import os, signal
    import skinseg.checkpoint
    save = skinseg.checkpoint.save_model
    def save_then_ctrl_c(*a, **kw):
        r = save(*a, **kw); os.kill(os.getpid(), signal.SIGINT); return r
    monkeypatch.setattr(skinseg.checkpoint, 'save_model', save_then_ctrl_c)
    out = tmp_path/'run'
    r = run_inprocess('train', train_data, '--out', out, '--epochs', 2, *TRAIN_FAST[2:], '--quiet')
    resume = f"skinseg train {shlex.quote(str(train_data))} --out {out} --resume"
    assert r.returncode == 130 and r.stderr == f"skinseg train: interrupted: 1 of 2 epochs saved in {out}: continue with {resume}\n", r.stderr[-2000:]
    monkeypatch.undo()
    assert run_inprocess(*shlex.split(resume)[1:], '--quiet').returncode == 0
    assert pd.read_csv(out/'log.csv').epoch.tolist() == [0, 1]

def test_ctrl_c_as_an_overwriting_run_writes_its_split_leaves_no_old_model_beside_it(train_data, tmp_path, monkeypatch):
    """A new run with --overwrite writes its split.csv just before its first model: a Ctrl-C landing between the two left
    the old run's model beside the new run's split, which calibrate and evaluate then trusted. The Ctrl-C now waits until
    the new model and checkpoint are written too."""
    import json, os, signal
    import skinseg.train
    out = tmp_path/'run'
    assert run_inprocess('train', train_data, '--out', out, *TRAIN_FAST, '--seed', 1, '--valid-pct', 0.25, '--quiet').returncode == 0
    write = skinseg.train.atomic_write
    def write_then_ctrl_c(path, *a, **kw):
        r = write(path, *a, **kw)
        if Path(path).name == 'split.csv': os.kill(os.getpid(), signal.SIGINT)
        return r
    monkeypatch.setattr(skinseg.train, 'atomic_write', write_then_ctrl_c)
    r = run_inprocess('train', train_data, '--out', out, *TRAIN_FAST[2:], '--epochs', 2, '--seed', 2, '--valid-pct', 0.25, '--overwrite', '--quiet')
    assert r.returncode == 130 and 'interrupted: 1 of 2 epochs saved' in r.stderr, r.stderr[-2000:]
    cfg = json.loads((out/'config.json').read_text())
    assert cfg['training']['run']['seed'] == 2 and (out/'checkpoint.safetensors').is_file()  # the new model, beside its own split
    valid = set(pd.read_csv(out/'split.csv').query('is_valid').image_id)
    assert cfg['training']['n_valid'] == len(valid)

def test_resuming_a_calibrated_run_keeps_the_calibration(train_data, tmp_path, monkeypatch):
    """A run stopped after an epoch, its model calibrated, then resumed: the new model was saved with threshold 0.5 and the
    calibration's record was dropped without a word. Now train warns before the first epoch, and the record stays: in the
    config's threshold_calibration while the calibrated model stands, in earlier_measurements once an epoch replaces it."""
    import json, os, signal
    import skinseg.checkpoint
    from skinseg.model import read_model_config
    from skinseg.tune import rewrite_config
    save = skinseg.checkpoint.save_model
    monkeypatch.setattr(skinseg.checkpoint, 'save_model', lambda *a, **kw: (save(*a, **kw), os.kill(os.getpid(), signal.SIGINT))[0])
    out = tmp_path/'run'
    assert run_inprocess('train', train_data, '--out', out, *TRAIN_FAST[2:], '--epochs', 3, '--quiet').returncode == 130
    monkeypatch.undo()
    cfg = read_model_config(out)
    rewrite_config(out, cfg | dict(threshold=0.7, threshold_calibration=dict(chosen=0.7, before=0.5, measured_on='clinic A (40 images)')))
    r = run_inprocess('train', train_data, '--out', out, '--resume', '--quiet')
    assert r.returncode == 0 and r.stderr.count('\n') == 1, r.stderr[-2000:]
    assert r.stderr.startswith(f"skinseg train: warning: {out/'config.json'}: the model trained so far has threshold 0.7"), r.stderr
    cfg = json.loads((out/'config.json').read_text())
    if cfg['training']['best_epoch'] == 1: assert cfg['threshold'] == 0.7 and cfg['threshold_calibration']['measured_on'] == 'clinic A (40 images)'
    else: assert cfg['threshold'] == 0.5 and [m['measured_on'] for m in cfg['earlier_measurements']] == ['clinic A (40 images)']
