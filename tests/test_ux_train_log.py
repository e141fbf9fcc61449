"""Case 15: `skinseg train ... > log 2>&1` writes a clean log: no progress-bar frames when stdout is not a terminal, one
plain line per epoch, each warning once as one line, and --quiet on every long verb (format_epoch, show_progress and
warning_printer themselves: nbs/api/13_train.ipynb and nbs/api/17_cli.ipynb). Also --fold and --masked-only from the command line."""
import json, re
import pandas as pd, pytest
from conftest import run_skinseg, run_inprocess, make_dataset

TINY = ['--size', '32', '--encoder', 'resnet18', '--bs', '4', '--threads', '1', '--bf16', 'off']

@pytest.fixture(scope='module')
def data(tmp_path_factory): return make_dataset(tmp_path_factory.mktemp('ux')/'data', n=12)

def test_redirected_train_log_is_plain(data, tmp_path):
    "Redirected output: no carriage returns, one `epoch N/M:` line per epoch, a warning (if any) once, without source lines."
    r = run_skinseg('train', data, '--out', tmp_path/'run', '--epochs', 2, *TINY, env={'PYTHONWARNINGS': ''})
    assert r.returncode == 0, r.stderr[-2000:]
    assert '\r' not in r.stdout + r.stderr
    lines = [l for l in r.stdout.splitlines() if l.startswith('epoch ')]
    assert [l.split(':')[0] for l in lines] == ['epoch 1/2', 'epoch 2/2'], r.stdout
    assert all(re.search(r'train_loss [\d.]+, valid_loss [\d.]+, dice [\d.]+', l) for l in lines), lines
    assert r.stderr.count('ImageNet weights unavailable') <= 1 and 'warnings.warn' not in r.stderr, r.stderr
    for l in r.stderr.splitlines(): assert l.startswith('skinseg train: '), r.stderr

def test_redirected_check_and_predict_logs_are_plain(data, tiny_model_dir, tmp_path):
    "`skinseg check` and `skinseg predict` wrote tqdm's progress frames (carriage returns) into a redirected stderr; now none."
    r = run_inprocess('check', data)
    assert r.returncode == 0 and '\r' not in r.stdout + r.stderr, r.stderr
    r = run_inprocess('predict', tiny_model_dir, data/'images', '--out', tmp_path/'masks')
    assert r.returncode == 0 and '\r' not in r.stdout + r.stderr and 'wrote 12 of 12 masks' in r.stdout, (r.stdout, r.stderr)

def test_quiet_train_on_one_fold(data, tmp_path):
    "--quiet prints nothing on stdout; --split FOLDS.CSV --fold 1 validates on fold 1, recorded in the config."
    r = run_skinseg('split', data, '--folds', 3, '--out', tmp_path/'folds.csv')
    assert r.returncode == 0, r.stderr
    r = run_skinseg('train', data, '--out', tmp_path/'f1', '--epochs', 1, *TINY, '--no-pretrained', '--quiet',
                    '--split', tmp_path/'folds.csv', '--fold', 1)
    assert r.returncode == 0 and r.stdout == '', (r.stdout, r.stderr[-2000:])
    folds, used = pd.read_csv(tmp_path/'folds.csv').set_index('image_id'), pd.read_csv(tmp_path/'f1'/'split.csv')
    assert used.is_valid.tolist() == (folds.fold[used.image_id] == 1).tolist()
    assert json.loads((tmp_path/'f1'/'config.json').read_text())['training']['fold'] == 1

@pytest.mark.parametrize('verb', ['train', 'predict', 'demo'])
def test_long_verbs_have_quiet(verb):
    r = run_inprocess(verb, '--help')
    assert r.returncode == 0 and '--quiet' in r.stdout, r.stdout

@pytest.mark.parametrize('option,says', [(['--fold', '1'], '--fold needs --split'), (['--lr', '0'], '--lr'),
                                         (['--valid-pct', '1.5'], '--valid-pct'), (['--seed', '-1'], '--seed'),
                                         (['--threads', '0'], '--threads'), (['--limit', '-5'], '--limit'),
                                         (['--num-workers', '-1'], '--num-workers')], ids=lambda o: ' '.join(o) if isinstance(o, list) else '')
def test_train_refuses_bad_values_before_work(data, tmp_path, option, says):
    r = run_inprocess('train', data, '--out', tmp_path/'run', '--epochs', 1, *TINY, '--no-pretrained', *option)
    assert r.returncode == 2 and f'skinseg train: error: {says}' in r.stderr, r.stderr
    assert not (tmp_path/'run').exists()

def test_demo_names_its_own_options(tmp_path):
    r = run_inprocess('demo', '--n-images', 0, '--out', tmp_path/'demo')
    assert r.returncode == 2 and '--n-images' in r.stderr, r.stderr
    assert not (tmp_path/'demo').exists()

def other_clinic(tmp_path):
    "A second synthetic dataset folder of 8 pairs whose ids (OTHER_...) do not clash with the first."
    other = make_dataset(tmp_path/'raw', n=8, seed=1)
    for p in sorted(other.rglob('SYNTH_*')): p.rename(p.with_name(p.name.replace('SYNTH', 'OTHER')))
    (other/'metadata.csv').write_text((other/'metadata.csv').read_text().replace('SYNTH', 'OTHER'))
    return other

def test_train_on_two_folders(data, tmp_path):
    "`skinseg train A B` trains on both folders, split together by lesion, and records both for --resume; an overlap is refused."
    other = other_clinic(tmp_path)
    r = run_inprocess('train', data, other, '--out', tmp_path/'run', '--epochs', 2, *TINY, '--no-pretrained', '--quiet')
    assert r.returncode == 0, r.stderr[-2000:]
    cfg = json.loads((tmp_path/'run'/'config.json').read_text())['training']
    assert cfg['n_train'] + cfg['n_valid'] == 20 and cfg['data'] == f'{data} + {other}', cfg
    assert pd.read_csv(tmp_path/'run'/'split.csv').image_id.str.startswith('OTHER').sum() == 8
    assert cfg['run']['data_dir'] == [str(data), str(other)]  # what --resume trains on again
    r = run_inprocess('train', data, data, '--out', tmp_path/'dup', '--epochs', 1, *TINY, '--no-pretrained', '--quiet')
    assert r.returncode != 0 and 'is also in' in r.stderr and r.stderr.count('\n') == 1, r.stderr

def test_train_repeats_the_smaller_folder(data, tmp_path):
    "`--repeat 1 3` shows the second folder's training images three times per epoch, validation once; recorded for --resume."
    other = other_clinic(tmp_path)
    r = run_inprocess('train', data, other, '--out', tmp_path/'run', '--repeat', 1, 3, '--epochs', 1, *TINY, '--no-pretrained', '--quiet')
    assert r.returncode == 0, r.stderr[-2000:]
    cfg = json.loads((tmp_path/'run'/'config.json').read_text())['training']
    split = pd.read_csv(tmp_path/'run'/'split.csv')
    assert len(split) == 20 and cfg['n_train'] == (~split.is_valid).sum(), cfg
    train_other = (~split.is_valid & split.image_id.str.startswith('OTHER')).sum()
    assert cfg['train_rows_per_epoch'] == cfg['n_train'] + 2 * train_other and train_other > 0, cfg
    assert cfg['repeat'] == cfg['run']['repeat'] == [1, 3], cfg
    for bad, says in ((['--repeat', 2], '--repeat takes one whole number of at least 1 per dataset folder (2 folders), not 2'),
                      (['--repeat', 1, 0], '--repeat takes one whole number of at least 1 per dataset folder (2 folders), not 1 0')):
        r = run_inprocess('train', data, other, '--out', tmp_path/'bad', '--epochs', 1, *TINY, '--no-pretrained', *bad)
        assert r.returncode == 2 and f'skinseg train: error: {says}' in r.stderr and r.stderr.count('\n') == 1, r.stderr
    r = run_inprocess('train', data, '--out', tmp_path/'bad', '--repeat', 3, '--epochs', 1, *TINY, '--no-pretrained')
    assert r.returncode == 2 and 'give two or more folders' in r.stderr, r.stderr
    assert not (tmp_path/'bad').exists()

def test_train_preset_long_with_flips(data, tmp_path):
    "`--preset long` trains the preset's 10 epochs; `--augment flips` trains with flips only; both are recorded in the config."
    r = run_inprocess('train', data, '--out', tmp_path/'run', '--preset', 'long', '--augment', 'flips', *TINY, '--no-pretrained', '--quiet')
    assert r.returncode == 0, r.stderr[-2000:]
    assert pd.read_csv(tmp_path/'run'/'log.csv').epoch.tolist() == list(range(10))
    cfg = json.loads((tmp_path/'run'/'config.json').read_text())['training']
    assert (cfg['preset'], cfg['epochs'], cfg['augment'], cfg['run']['augment']) == ('long', 10, 'flips', 'flips'), cfg
    help_text = run_inprocess('train', '--help').stdout
    assert '--preset' in help_text and '--augment' in help_text
