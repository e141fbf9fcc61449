"""`skinseg train` run as a subprocess on synthetic data: its outputs, SIGKILL mid-epoch then --resume, and --resume with
no checkpoint (train() in process, a crash and resume, and a failed checkpoint write: nbs/api/13_train.ipynb)."""
import os, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd, pytest
from skinseg.core import load_model
from skinseg.data import synthetic_dataset

SKINSEG = str(Path(sys.executable).with_name('skinseg'))
TINY = ['--size', '32', '32', '--no-pretrained', '--encoder', 'resnet18', '--bs', '4', '--seed', '1', '--threads', '1']

@pytest.fixture(scope='module')
def data(tmp_path_factory): return synthetic_dataset(tmp_path_factory.mktemp('syn'), n=24)

def skinseg(*args, **kw): return subprocess.run([SKINSEG, *map(str, args)], capture_output=True, text=True, timeout=300, **kw)

def log_epochs(out): return pd.read_csv(out/'log.csv').epoch.tolist()

def test_train_writes_model_config_log_checkpoint_split(data, tmp_path):
    out = tmp_path/'run'
    r = skinseg('train', data, '--out', out, '--epochs', 1, *TINY)
    assert r.returncode == 0, r.stderr[-2000:]
    for f in ('model.safetensors', 'config.json', 'log.csv', 'checkpoint.safetensors', 'split.csv'): assert (out/f).is_file(), f
    model, cfg = load_model(out)
    assert cfg['input_size'] == [32, 32] and cfg['encoder'] == 'resnet18' and cfg['training']['epochs'] == 1
    assert set(cfg['scores']) == {'dice', 'iou', 'threshold_jaccard', 'global_iou'} and 0 <= cfg['scores']['iou'] <= 1
    split = pd.read_csv(out/'split.csv')
    assert split.is_valid.sum() == cfg['training']['n_valid'] and len(split) == 24
    assert not set(split.lesion_id[split.is_valid]) & set(split.lesion_id[~split.is_valid])
    assert log_epochs(out) == [0]
    assert f"{out}: the model of epoch 1/1 is saved there (the best per-image IoU, {cfg['scores']['iou']:.4f}, on {cfg['training']['n_valid']} validation images)" in r.stdout, r.stdout

def test_sigkill_mid_epoch_then_resume(data, tmp_path):
    out, ckpt = tmp_path/'killed', tmp_path/'killed'/'checkpoint.safetensors'
    p = subprocess.Popen([SKINSEG, *map(str, ['train', data, '--out', out, '--epochs', 3, *TINY, '--bs', 2])],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not ckpt.exists() and p.poll() is None and time.time() - t0 < 240: time.sleep(0.05)
    assert p.poll() is None, f"run ended before it could be killed: {p.stderr.read()[-2000:]}"
    assert ckpt.exists(), "no checkpoint after 240 s"
    time.sleep(0.2)  # into the second epoch
    os.kill(p.pid, signal.SIGKILL); p.wait()
    from skinseg.train import read_checkpoint
    done = read_checkpoint(ckpt)[1]['epoch']
    assert done < 3, "the run finished before the kill"
    r = skinseg('train', data, '--out', out, '--resume', '--threads', 1)  # the same thread count: the same sums
    assert r.returncode == 0, r.stderr[-2000:]
    assert log_epochs(out) == [0, 1, 2]
    whole = tmp_path/'whole'  # the same run, never stopped: the resumed epochs must match it (data order, augmentation, weights)
    assert skinseg('train', data, '--out', whole, '--epochs', 3, *TINY, '--bs', 2).returncode == 0
    cols = ['valid_loss', 'dice', 'iou']
    pd.testing.assert_frame_equal(pd.read_csv(out/'log.csv')[cols], pd.read_csv(whole/'log.csv')[cols])
    assert read_checkpoint(ckpt)[1]['epoch'] == 3
    assert load_model(out)[1]['training']['epochs'] == 3
    r = skinseg('train', data, '--out', out, '--epochs', 3, *TINY, '--bs', 2, '--resume')  # the original command, resumed
    assert r.returncode == 0 and 'all 3 epochs already done' in r.stdout, r.stderr[-2000:]

def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    r = skinseg('train', tmp_path, '--out', tmp_path/'none', '--resume')
    assert r.returncode == 2 and 'checkpoint.safetensors: no checkpoint to resume from' in r.stderr

def test_loss_ce_lovasz_is_trained_recorded_and_kept_on_resume(data, tmp_path):
    "`--loss ce_lovasz` trains with CE + Lovász hinge, the config says so, and --resume refuses another loss."
    out = tmp_path/'lovasz'
    r = skinseg('train', data, '--out', out, '--epochs', 1, '--loss', 'ce_lovasz', *TINY)
    assert r.returncode == 0, r.stderr[-2000:]
    training = load_model(out)[1]['training']
    assert training['run']['loss'] == 'ce_lovasz' and 'Lovász hinge' in training['loss']
    r = skinseg('train', data, '--out', out, '--resume', '--loss', 'ce_dice', *TINY)
    assert r.returncode != 0 and '--loss ce_dice (the run: ce_lovasz)' in r.stderr, r.stderr[-2000:]
    r = skinseg('train', data, '--out', tmp_path/'bad', '--loss', 'dice', *TINY)
    assert r.returncode != 0 and "unknown loss 'dice': choose one of ('ce_dice', 'ce_lovasz')" in r.stderr and not (tmp_path/'bad').exists()

def test_resume_of_a_limited_run_ends_with_the_uninterrupted_runs_weights(data, tmp_path):
    "A `limit` run stopped after its first epoch and resumed trains on its images in the order the run drew them (resume once read them in file order): the same weights as the run never stopped."
    import torch
    from safetensors.torch import load_file
    import skinseg.checkpoint as ck
    from skinseg.train import train
    kw = dict(epochs=2, bs=4, size=(32, 32), encoder='resnet18', pretrained=False, limit=16, threads=1, quiet=True, bf16=False)
    train(data, out=tmp_path/'full', **kw)
    after_epoch = ck.TrainTracker.after_epoch
    def stop_after_first(self):
        after_epoch(self)
        if self.epoch == 0: raise KeyboardInterrupt
    ck.TrainTracker.after_epoch = stop_after_first
    try:
        with pytest.raises(KeyboardInterrupt): train(data, out=tmp_path/'stopped', **kw)
    finally: ck.TrainTracker.after_epoch = after_epoch
    train(data, out=tmp_path/'stopped', resume=True, quiet=True)
    a, b = load_file(tmp_path/'full'/'model.safetensors'), load_file(tmp_path/'stopped'/'model.safetensors')
    assert max((a[k].float() - b[k].float()).abs().max().item() for k in a) == 0
