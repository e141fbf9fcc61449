"""Reliability of the `skinseg` verbs, run as a user runs them: bad input gives one clear line naming the file,
good work is never lost, and no traceback reaches the user."""
import contextlib, io, os, shlex, shutil, signal, subprocess, sys, textwrap
from pathlib import Path
import numpy as np
import pandas as pd
import pytest, torch
from PIL import Image, ImageDraw

from skinseg.core import read_mask, WEIGHTS_NAME, CONFIG_NAME, IMAGE_EXTS
from conftest import run_skinseg, run_inprocess, write_bad_images, make_dataset, SKINSEG
from test_reliability_models import malicious_files

def one_error_line(r, verb:str, *names:str, contains:str='') -> str:
    "Assert `r` failed with exit status 2 and one `skinseg VERB: error:` line naming `names` and saying `contains`."
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = [l for l in r.stderr.splitlines() if l.startswith(f'skinseg {verb}: error:')]
    assert len(lines) == 1, r.stderr
    for n in names: assert str(n) in lines[0], f"{n} not named in: {lines[0]}"
    assert contains in lines[0], lines[0]
    return lines[0]

def lesion_image(h=60, w=80) -> Image.Image:
    "A skin-coloured image with a dark elliptic lesion."
    img = Image.new('RGB', (w, h), (215, 160, 140))
    ImageDraw.Draw(img).ellipse([w//4, h//4, 3*w//4, 3*h//4], fill=(110, 60, 40))
    return img

# ## predict: a folder with good images of every kind and bad files among them

@pytest.fixture(scope='module')
def mixed_folder(tmp_path_factory) -> tuple:
    "A folder 'my scans' with good images in every mode (some with non-ASCII names) and broken files: (folder, good {name: (h, w)}, bad {name: problem})."
    folder = tmp_path_factory.mktemp('predict')/'my scans ü'
    folder.mkdir()
    img = lesion_image()
    good = {}
    def add(name, im, shape=(60, 80), **kw): im.save(folder/name, **kw); good[name] = shape
    add('ISIC_0000001.jpg', img, quality=90)
    add('lésion 2.png', img)
    add('gray.png', img.convert('L'))
    add('palette.png', img.convert('P', palette=Image.Palette.ADAPTIVE, colors=16))
    add('rgba.png', img.convert('RGBA'))
    add('cmyk.jpg', img.convert('CMYK'))
    add('deep16.png', Image.fromarray(np.asarray(img.convert('L')).astype(np.uint16) * 257))
    exif = Image.Exif(); exif[0x0112] = 6
    add('rotated.jpg', img, shape=(80, 60), exif=exif)  # shown rotated 90°: the mask has the display size
    add('UPPER.JPG', img)
    add('scan.tiff', img)
    bad = write_bad_images(folder, np.asarray(img))
    (folder/'notes.txt').write_text('not an image and not named like one: ignored')
    return folder, good, bad

def test_predict_folder_with_bad_files(tiny_model_dir, mixed_folder, tmp_path):
    "Every good image gets its mask at its own display size; every bad file is listed with its problem; exit 1."
    folder, good, bad = mixed_folder
    out = tmp_path/'masks out'
    r = run_skinseg('predict', tiny_model_dir, folder, '--out', out)
    assert r.returncode == 1, (r.returncode, r.stderr)
    written = {p.name for p in out.iterdir()}
    assert written == {f'{Path(n).stem}_segmentation.png' for n in good}, written
    for name, shape in good.items():
        m = read_mask(out/f'{Path(name).stem}_segmentation.png')
        assert m.shape == shape, (name, m.shape)
        assert set(np.unique(m)) <= {0, 255}
    for name, problem in bad.items():
        line = next((l for l in r.stderr.splitlines() if name in l), None)
        assert line is not None, f"{name} not reported:\n{r.stderr}"
        assert problem in line, line
    assert [l for l in (r.stdout + r.stderr).splitlines() if 'notes.txt' in l] == [
        f"skinseg predict: warning: {folder}: 1 file left out by its extension (notes.txt): skinseg predicts {' '.join(IMAGE_EXTS)} files"]
    same_pixels = [read_mask(out/f'{n}_segmentation.png') for n in ('lésion 2', 'rgba', 'scan')]
    assert all(np.array_equal(same_pixels[0], m) for m in same_pixels[1:]), "the same RGB pixels gave different masks"
    assert not any(p.name.startswith('.') for p in out.iterdir()), "a temporary file was left behind"

def test_predict_says_files_left_out_by_extension(tiny_model_dir, tmp_path):
    "Images PIL reads but skinseg does not take (.webp, .jfif), and other files, are said in one line; masks, hidden files and skinseg's own are not."
    folder = tmp_path/'scans'; folder.mkdir()
    for name in ('a.jpg', 'b.webp', 'c.jfif'): lesion_image().save(folder/name, format='JPEG' if name.endswith('.jfif') else None)
    Image.fromarray(np.zeros((60, 80), np.uint8)).save(folder/'a_segmentation.png')
    for name in ('notes.txt', '.DS_Store', 'summary.json'): (folder/name).write_text('{}')
    r = run_inprocess('predict', tiny_model_dir, folder, '--out', tmp_path/'out')
    assert r.returncode == 0, r.stderr
    left = [n for n in ('b.webp', 'c.jfif', 'notes.txt') if Path(n).suffix not in IMAGE_EXTS]
    lines = [l for l in r.stderr.splitlines() if 'left out by' in l]
    assert len(lines) == 1 and lines[0].startswith(f"skinseg predict: warning: {folder}: {len(left)} file"), r.stderr
    assert lines[0].endswith(f"extension ({', '.join(left)}): skinseg predicts {' '.join(IMAGE_EXTS)} files"), lines[0]
    assert f"wrote {4 - len(left)} of {4 - len(left)} masks" in r.stdout, r.stdout

def test_predict_named_files_missing_and_broken(tiny_model_dir, mixed_folder, tmp_path):
    "Files named on the command line: the good one is written, the missing and the empty one are reported."
    folder, good, bad = mixed_folder
    r = run_inprocess('predict', tiny_model_dir, folder/'lésion 2.png', folder/'empty.jpg', tmp_path/'gone.jpg',
                    '--out', tmp_path/'out')
    assert r.returncode == 1, r.stderr
    assert [p.name for p in (tmp_path/'out').iterdir()] == ['lésion 2_segmentation.png']
    assert 'empty.jpg' in r.stderr and 'gone.jpg' in r.stderr and 'not found' in r.stderr, r.stderr

def test_predict_empty_folder_and_bad_model(tiny_model_dir, tmp_path):
    "An empty folder and a model folder that is not a model are whole-command errors: exit 2, one line."
    (tmp_path/'empty dir').mkdir()
    one_error_line(run_inprocess('predict', tiny_model_dir, tmp_path/'empty dir', '--out', tmp_path/'o'),
                   'predict', tmp_path/'empty dir', contains='no images')
    lesion_image().save(tmp_path/'a.jpg')
    model = Path(shutil.copytree(tiny_model_dir, tmp_path/'model'))
    (model/CONFIG_NAME).write_text('{"model_type": "bert"}')
    one_error_line(run_inprocess('predict', model, tmp_path/'a.jpg', '--out', tmp_path/'o'),
                   'predict', model/CONFIG_NAME, contains='not a skinseg model')

def test_predict_out_is_a_file(tiny_model_dir, tmp_path):
    lesion_image().save(tmp_path/'a.jpg'); (tmp_path/'taken').write_text('my notes')
    one_error_line(run_inprocess('predict', tiny_model_dir, tmp_path/'a.jpg', '--out', tmp_path/'taken'), 'predict', tmp_path/'taken')
    assert (tmp_path/'taken').read_text() == 'my notes'

@pytest.mark.parametrize('option', [['--bs', '0'], ['--bs', '-3'], ['--device', 'cuda'], ['--device', 'tpu']], ids=' '.join)
def test_predict_bad_option_values(tiny_model_dir, tmp_path, option):
    "An impossible option value is named in one line, and is not blamed on the model file."
    if option == ['--device', 'cuda'] and torch.cuda.is_available(): pytest.skip("this machine has CUDA, so --device cuda is a valid value here")
    lesion_image().save(tmp_path/'a.jpg')
    line = one_error_line(run_inprocess('predict', tiny_model_dir, tmp_path/'a.jpg', '--out', tmp_path/'o', *option), 'predict')
    assert option[1] in line or option[0].lstrip('-') in line, line
    assert 'not a valid safetensors' not in line, f"a device problem reported as a corrupt model: {line}"

def test_predict_flag_value_not_true_or_false(tiny_model_dir, tmp_path):
    "A --tta value other than true or false is said in those words, not by fastcore's internal name bool_arg."
    lesion_image().save(tmp_path/'a.jpg')
    r = run_inprocess('predict', tiny_model_dir, tmp_path/'a.jpg', '--out', tmp_path/'o', '--tta', 'banana')
    assert r.returncode == 2 and "skinseg predict: error: argument --tta: must be true or false, got 'banana'" in r.stderr, r.stderr
    assert 'bool_arg' not in r.stderr
    assert run_inprocess('predict', tiny_model_dir, tmp_path/'a.jpg', '--out', tmp_path/'o', '--tta', 'yes', '--quiet').returncode == 0

def test_swapped_arguments_are_said(tiny_model_dir, tmp_path):
    "predict and evaluate given their folders in the wrong order say so in one line, with the right order."
    data = make_dataset(tmp_path/'data', n=3)
    one_error_line(run_inprocess('predict', data/'images', tiny_model_dir, '--out', tmp_path/'p'), 'predict',
                   contains=f"{tiny_model_dir} is a skinseg model folder, not images: the arguments look swapped")
    assert run_inprocess('predict', tiny_model_dir, data/'images', '--out', tmp_path/'p', '--quiet').returncode == 0
    one_error_line(run_inprocess('evaluate', tmp_path/'p', data, '--csv', tmp_path/'s.csv'), 'evaluate',
                   contains=f"the folders look swapped; the ground truth comes first, then the predicted masks: skinseg evaluate {data} {tmp_path/'p'}")
    one_error_line(run_inprocess('evaluate', data/'images', tmp_path/'p', '--csv', tmp_path/'s.csv'), 'evaluate',
                   contains="looks like a photograph, not a mask")
    one_error_line(run_inprocess('calibrate', data, tiny_model_dir), 'calibrate',
                   contains=f"{tiny_model_dir} is a skinseg model folder, and {data} holds images: the arguments look swapped; "
                            f"the model comes first, then the labelled images: skinseg calibrate {shlex.quote(str(tiny_model_dir))} {data}")

def test_folder_above_a_model_names_the_model(tiny_model_dir, tmp_path):
    "The demo's `demo_out` given for its `demo_out/model`: the model folder inside is named, with the command to run."
    above = tmp_path/'demo_out'; shutil.copytree(tiny_model_dir, above/'model'); lesion_image().save(above/'errors.png')
    (tmp_path/'odd').mkdir(); lesion_image().save(tmp_path/'odd'/'good.jpg')
    one_error_line(run_inprocess('predict', above, tmp_path/'odd'/'good.jpg', '--out', tmp_path/'p'), 'predict',
                   contains=f"{above}: not a skinseg model folder, but {above/'model'} is one: skinseg predict {above/'model'} {tmp_path/'odd'/'good.jpg'}")
    data = make_dataset(tmp_path/'data', n=3)
    one_error_line(run_inprocess('calibrate', above, data), 'calibrate', contains=f"{above}: not a skinseg model folder, but {above/'model'} is one")
    assert not (tmp_path/'p').exists()

def test_predict_malicious_model_file(tiny_model_dir, tmp_path):
    "A pickle posing as model.safetensors is refused by name, and its payload never runs."
    marker = tmp_path/'PWNED'
    model = Path(shutil.copytree(tiny_model_dir, tmp_path/'model'))
    evil = malicious_files(tmp_path/'evil', marker)
    shutil.copy(evil['zip.pth'], model/WEIGHTS_NAME)
    lesion_image().save(tmp_path/'a.jpg')
    one_error_line(run_inprocess('predict', model, tmp_path/'a.jpg', '--out', tmp_path/'o'), 'predict', model/WEIGHTS_NAME)
    assert not marker.exists()
    for kind in ['raw.pth', 'zip.pth']:  # posing as an exported TorchScript or ONNX model
        for suffix in ['.pt', '.onnx']:
            exported = shutil.copy(evil[kind], tmp_path/f'{Path(kind).stem}{suffix}')
            one_error_line(run_inprocess('predict', exported, tmp_path/'a.jpg', '--out', tmp_path/'o'), 'predict', exported)
            assert not marker.exists(), f"{kind} as {suffix} was unpickled"

KILL_AT_THIRD_MASK = textwrap.dedent('''
    import os, signal, sys
    from PIL import Image
    real_save, saved = Image.Image.save, []
    def save(self, fp, *a, **kw):
        saved.append(fp)
        if len(saved) == 3: open(fp, 'wb').write(b'\\x89PNG half'); os.kill(os.getpid(), signal.SIGKILL)
        return real_save(self, fp, *a, **kw)
    Image.Image.save = save
    from skinseg.cli import main
    sys.exit(main(sys.argv[1:]))
''')

def test_predict_killed_midway_then_rerun(tiny_model_dir, tmp_path):
    "Masks written before a SIGKILL are complete, none is half-written under its real name, and a rerun finishes."
    (tmp_path/'imgs').mkdir()
    for i in range(6): lesion_image(60 + i, 80).save(tmp_path/'imgs'/f'ISIC_{i:07d}.jpg')
    out = tmp_path/'out'
    r = subprocess.run([sys.executable, '-c', KILL_AT_THIRD_MASK, 'predict', tiny_model_dir, tmp_path/'imgs', '--out', out,
                        '--bs', '2'], capture_output=True, text=True, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    done = sorted(out.glob('*_segmentation.png'))
    assert len(done) == 2, [p.name for p in out.iterdir()]
    for p in done: assert read_mask(p).shape[1] == 80
    r = run_inprocess('predict', tiny_model_dir, tmp_path/'imgs', '--out', out, '--quiet')
    assert r.returncode == 0, r.stderr
    for i in range(6): assert read_mask(out/f'ISIC_{i:07d}_segmentation.png').shape == (60 + i, 80)

MEASURE = textwrap.dedent('''
    import resource, subprocess, sys
    r = subprocess.run(sys.argv[1:], capture_output=True, text=True)
    sys.stderr.write(r.stderr); sys.stdout.write(r.stdout)
    print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    sys.exit(r.returncode)
''')

def test_predict_12000x9000_image_in_bounded_memory(tiny_model_dir, tmp_path):
    "A 108-megapixel photograph is segmented at full size with a peak memory well under 4 GB."
    W, H = 12000, 9000
    img = Image.new('RGB', (W, H), (215, 160, 140))
    ImageDraw.Draw(img).ellipse([W//4, H//4, 3*W//4, 3*H//4], fill=(110, 60, 40))
    img.save(tmp_path/'huge.jpg', quality=80); del img
    r = subprocess.run([sys.executable, '-c', MEASURE, SKINSEG, 'predict', tiny_model_dir, tmp_path/'huge.jpg',
                        '--out', tmp_path/'out'], capture_output=True, text=True, timeout=600,
                       env={**os.environ, 'PYTHONWARNINGS': 'ignore'})
    assert r.returncode == 0 and 'Traceback' not in r.stderr, r.stderr
    peak_gb = int(r.stdout.split('PEAK_RSS_KB')[1]) / 2**20
    print(f'peak RSS predicting a {W}x{H} JPEG: {peak_gb:.2f} GB')
    assert peak_gb < 4, f"peak RSS {peak_gb:.2f} GB"
    with Image.open(tmp_path/'out'/'huge_segmentation.png') as m: assert m.size == (W, H) and m.mode in ('L', '1')

# ## evaluate: missing, misfit and broken predictions; bad split and output paths

@pytest.fixture
def eval_dirs(tmp_path) -> tuple:
    "Ground-truth masks and matching predictions for 4 images, in folders with spaces and non-ASCII names."
    gt, pred = tmp_path/'ground truth', tmp_path/'prédictions'
    gt.mkdir(); pred.mkdir()
    for i in range(4):
        m = np.zeros((30, 40), np.uint8); m[5:20, 5 + i:25 + i] = 255
        Image.fromarray(m).save(gt/f'ISIC_{i:07d}_segmentation.png'); Image.fromarray(m).save(pred/f'ISIC_{i:07d}_segmentation.png')
    return gt, pred

def test_evaluate_bad_predictions(eval_dirs, tmp_path):
    gt, pred = eval_dirs
    r = run_inprocess('evaluate', gt, pred, '--csv', tmp_path/'s.csv')
    assert r.returncode == 0 and '"dice": 1.0' in r.stdout, r.stdout + r.stderr
    (pred/'ISIC_0000001_segmentation.png').unlink()
    one_error_line(run_skinseg('evaluate', gt, pred, '--csv', tmp_path/'s.csv'), 'evaluate',
                   'ISIC_0000001_segmentation.png', contains='missing')

def test_evaluate_broken_and_three_level_prediction(eval_dirs, tmp_path):
    "An empty or three-level prediction file is named; a near-binary one is binarised (a misfit size: nbs/api/10_metrics.ipynb)."
    from skinseg.metrics import evaluate_dirs
    from skinseg.core import SkinsegError
    gt, pred = eval_dirs
    (pred/'ISIC_0000002_segmentation.png').write_bytes(b'')
    with pytest.raises(SkinsegError, match='empty') as e: evaluate_dirs(gt, pred)
    assert 'ISIC_0000002_segmentation.png' in str(e.value)
    three = np.zeros((30, 40), np.uint8); three[:10] = 128; three[10:20] = 255
    Image.fromarray(three).save(pred/'ISIC_0000002_segmentation.png')  # a third of it grey: not a mask, refused by name
    with pytest.raises(SkinsegError, match='not a binary mask') as e: evaluate_dirs(gt, pred)
    assert 'ISIC_0000002_segmentation.png' in str(e.value)
    three[:10, :2] = 128; three[:10, 2:] = 0  # a few grey border pixels (under 5%), as JPEG leaves: binarised at 128
    Image.fromarray(three).save(pred/'ISIC_0000002_segmentation.png')
    summary, df = evaluate_dirs(gt, pred)
    assert summary['n'] == 4 and df.set_index('image_id').loc['ISIC_0000002', 'dice'] < 1

def test_evaluate_empty_gt_folder(tmp_path, eval_dirs):
    gt, pred = eval_dirs
    (tmp_path/'empty').mkdir()
    one_error_line(run_inprocess('evaluate', tmp_path/'empty', pred), 'evaluate', tmp_path/'empty')

@pytest.mark.parametrize('case', ['missing split', 'garbled split', 'header-only split'])
def test_evaluate_bad_split_csv(eval_dirs, tmp_path, case):
    "A missing, garbled or column-less split CSV is named in one line, not a traceback."
    gt, pred = eval_dirs
    split = tmp_path/f'{case}.csv'
    if case == 'garbled split': split.write_bytes(bytes(range(256)) * 8)
    if case == 'header-only split': split.write_text('image_id,dx\n')
    one_error_line(run_inprocess('evaluate', gt, pred, '--csv', tmp_path/'s.csv', '--split', split), 'evaluate', split)

def test_evaluate_csv_into_missing_folder(eval_dirs, tmp_path):
    "The per-image CSV goes into a folder that does not exist yet: made, or refused by name before scoring."
    gt, pred = eval_dirs
    out = tmp_path/'no such dir'/'scores.csv'
    r = run_inprocess('evaluate', gt, pred, '--csv', out)
    if r.returncode == 0: assert len(pd.read_csv(out)) == 4
    else: one_error_line(r, 'evaluate', out.parent)

# ## check: every problem of a dataset on its own line, exit 1; no dataset at all, exit 2

def test_check_lists_every_problem(tmp_path):
    from test_reliability_io import dataset_with_problems
    root, problems, good = dataset_with_problems(tmp_path/'my data ü')
    r = run_skinseg('check', root, '--quiet')
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = (r.stdout + r.stderr).splitlines()
    for words, path in problems.items():
        assert any(str(path) in l and words in l for l in lines), f"{path} ({words}) not reported:\n{r.stdout}{r.stderr}"
    for iid in good: assert not any(iid + '.' in l for l in lines), f"{iid} is fine but was reported"

def test_check_no_dataset(tmp_path):
    (tmp_path/'empty').mkdir(); (tmp_path/'a file.txt').write_text('x')
    one_error_line(run_inprocess('check', tmp_path/'empty'), 'check', tmp_path/'empty', contains='empty')
    one_error_line(run_inprocess('check', tmp_path/'nothing here'), 'check', tmp_path/'nothing here')
    one_error_line(run_inprocess('check', tmp_path/'a file.txt'), 'check', tmp_path/'a file.txt')

# ## train: broken data, foreign split files and malicious weights are refused before any work

TRAIN_FAST = ['--epochs', '1', '--bs', '2', '--size', '32', '32', '--encoder', 'resnet18', '--no-pretrained', '--bf16', 'off']

@pytest.fixture
def train_data(tmp_path) -> Path:
    return make_dataset(tmp_path/'train data é', n=8, size=(32, 40))

def test_train_broken_image_named(train_data, tmp_path):
    from skinseg.data import find_pairs
    bad = Path(find_pairs(train_data).image[3]); bad.write_bytes(bad.read_bytes()[:150])
    r = run_skinseg('train', train_data, '--out', tmp_path/'run', *TRAIN_FAST)
    one_error_line(r, 'train', bad, contains='truncated')
    assert not (tmp_path/'run'/WEIGHTS_NAME).exists()

@pytest.mark.parametrize('option', [['--bs', '0'], ['--size', '0', '0'], ['--size', '32', '32', '32'], ['--encoder', 'vgg99'],
                                    ['--epochs', '0'], ['--preset', 'longer'], ['--augment', 'heavy']], ids=' '.join)
def test_train_bad_option_values(train_data, tmp_path, option):
    "An impossible option value is named in one line before any work, and nothing is written."
    args = ['--epochs', '1', '--bs', '2', '--size', '32', '32', '--encoder', 'resnet18', '--preset', 'recipe', '--augment', 'standard']
    i = args.index(option[0]); j = i + 1 + (2 if option[0] == '--size' else 1)
    args[i:j] = option
    line = one_error_line(run_inprocess('train', train_data, '--out', tmp_path/'run', *args, '--no-pretrained', '--bf16', 'off'), 'train')
    assert option[0].lstrip('-') in line or option[1] in line, line
    assert not (tmp_path/'run'/WEIGHTS_NAME).exists()

def test_train_unknown_encoder_is_the_only_line(train_data, tmp_path):
    "An encoder no U-Net has is refused before the data is read or weights are tried: no 'ImageNet weights unavailable' first."
    r = run_inprocess('train', train_data, '--out', tmp_path/'run', '--encoder', 'resnet999', '--epochs', '1', '--bs', '2', '--size', '32', '32')
    one_error_line(r, 'train', contains="unknown encoder 'resnet999'")
    assert r.stderr.count('\n') == 1, r.stderr

def test_train_without_any_mask(train_data, tmp_path):
    "A dataset with no masks at all: said so, without offering --masked-only, which would train on none."
    for m in (train_data/'masks').iterdir(): m.unlink()
    for args in ([], ['--masked-only']):
        line = one_error_line(run_inprocess('train', train_data, '--out', tmp_path/'run', *TRAIN_FAST, *args), 'train', train_data,
                              contains='none of its 8 images has a mask')
        assert '--masked-only' not in line, line

def test_closed_stdout_pipe_ends_quietly(eval_dirs, tmp_path):
    "`skinseg evaluate ... | head -3`: the reader closes the pipe early; no error line, status 141 (128 + SIGPIPE) as a shell reports for a Unix tool."
    from skinseg.cli import main
    gt, pred = eval_dirs
    r, w = os.pipe(); os.close(r)
    with open(w, 'w') as out, contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()) as err:
        status = main(['evaluate', str(gt), str(pred), '--csv', str(tmp_path/'s.csv')])
    assert status == 141 and 'error' not in err.getvalue(), (status, err.getvalue())

def test_train_stops_when_it_diverges(train_data, tmp_path):
    "A learning rate far too high: the loss overflows; train stops with one line instead of saving a nan network as the model."
    r = run_inprocess('train', train_data, '--out', tmp_path/'run', *TRAIN_FAST[:1], '3', *TRAIN_FAST[2:], '--lr', '1e6')
    one_error_line(r, 'train', contains='training diverged')

def test_train_out_is_a_file(train_data, tmp_path):
    (tmp_path/'taken').write_text('my notes')
    one_error_line(run_inprocess('train', train_data, '--out', tmp_path/'taken', *TRAIN_FAST), 'train', tmp_path/'taken')
    assert (tmp_path/'taken').read_text() == 'my notes'

def test_train_missing_or_empty_data(tmp_path):
    (tmp_path/'empty').mkdir()
    for data in [tmp_path/'no data', tmp_path/'empty']:
        one_error_line(run_inprocess('train', data, '--out', tmp_path/'run', *TRAIN_FAST), 'train', data)

def test_train_bad_split_csv(train_data, tmp_path):
    (tmp_path/'garbled.csv').write_bytes(bytes(range(256)) * 8)
    for split in [tmp_path/'no split.csv', tmp_path/'garbled.csv']:
        one_error_line(run_inprocess('train', train_data, '--out', tmp_path/'run', '--split', split, *TRAIN_FAST), 'train', split)

def test_train_resume_from_foreign_or_cut_checkpoint(train_data, tmp_path):
    "--resume from a checkpoint that is another safetensors file, or cut short, names it (no checkpoint at all: test_train.py)."
    from skinseg.train import CHECKPOINT_NAME
    from safetensors.torch import save_file
    ckpt = tmp_path/'run'/CHECKPOINT_NAME; ckpt.parent.mkdir()
    save_file({'x': torch.zeros(2)}, str(ckpt))  # valid safetensors, not a checkpoint
    one_error_line(run_inprocess('train', train_data, '--out', tmp_path/'run', '--resume'), 'train', ckpt)
    ckpt.write_bytes(ckpt.read_bytes()[:40])
    one_error_line(run_inprocess('train', train_data, '--out', tmp_path/'run', '--resume'), 'train', ckpt)

def test_train_never_unpickles(train_data, tmp_path):
    "A pickle given as --weights, or planted as the checkpoint to --resume from, is refused and never runs."
    from skinseg.train import CHECKPOINT_NAME
    marker = tmp_path/'PWNED'
    evil = malicious_files(tmp_path/'evil', marker)
    for kind in ['raw.pth', 'zip.pth']:
        one_error_line(run_inprocess('train', train_data, '--out', tmp_path/'run', '--weights', evil[kind], *TRAIN_FAST[:-3]),
                       'train', evil[kind])
        assert not marker.exists(), f"--weights {kind} was unpickled"
    (tmp_path/'run2').mkdir()
    shutil.copy(evil['zip.pth'], tmp_path/'run2'/CHECKPOINT_NAME)
    one_error_line(run_inprocess('train', train_data, '--out', tmp_path/'run2', '--resume'), 'train', tmp_path/'run2'/CHECKPOINT_NAME)
    assert not marker.exists(), "a planted checkpoint was unpickled"

# ## train and demo never replace a trained model unasked, nor write over their own input; too little data is refused

def test_train_never_replaces_a_trained_model_unasked(train_data, tmp_path):
    "A second run into a folder holding a model is refused, and so is --resume with other settings; --overwrite replaces it."
    from skinseg.train import CHECKPOINT_NAME
    from skinseg.core import load_model
    out = tmp_path/'run'
    r = run_inprocess('train', train_data, '--out', out, *TRAIN_FAST, '--quiet')
    assert r.returncode == 0, r.stderr[-2000:]
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    one_error_line(run_inprocess('train', train_data, '--out', out, *TRAIN_FAST, '--seed', 3), 'train', out,
                   contains='already holds a trained model: pass --resume to continue it, --overwrite to replace it, or choose another --out')
    line = one_error_line(run_inprocess('train', tmp_path, '--out', out, '--resume', '--epochs', 4, '--size', 64, '--lr', 0.01,
                                        '--num-workers', 0), 'train', out/CHECKPOINT_NAME)
    for says in (f'DATA {tmp_path} (the run: {train_data})', '--epochs 4 (the run: 1)', '--size 64 (the run: 32 32)', '--lr 0.01 (the run: 0.001)'):
        assert says in line, line
    assert 'num-workers' not in line, line  # it cannot change the result
    one_error_line(run_inprocess('train', train_data, '--out', out, '--resume', '--overwrite'), 'train', contains='give one of them')
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    r = run_inprocess('train', train_data, '--out', out, *TRAIN_FAST, '--resume')  # the original command, resumed: nothing left to do
    assert r.returncode == 0 and 'all 1 epochs already done' in r.stdout, r.stdout + r.stderr
    (out/'model.onnx').write_bytes(b'the old run, exported')  # an export of the old model would outlive it and be used
    r = run_inprocess('train', train_data, '--out', out, *TRAIN_FAST, '--seed', 3, '--overwrite', '--quiet')
    assert r.returncode == 0, r.stderr[-2000:]
    assert load_model(out)[1]['training']['run']['seed'] == 3 and pd.read_csv(out/'log.csv').epoch.tolist() == [0]
    assert not (out/'model.onnx').exists()

def test_train_never_writes_over_its_split_input(train_data, tmp_path):
    "`split --out run/split.csv` then `train --split run/split.csv --out run`: refused, the fold CSV kept as it was."
    out = tmp_path/'run'; out.mkdir()
    assert run_inprocess('split', train_data, '--folds', 2, '--out', out/'split.csv').returncode == 0
    before = (out/'split.csv').read_bytes()
    one_error_line(run_inprocess('train', train_data, '--split', out/'split.csv', '--fold', 0, '--out', out, *TRAIN_FAST),
                   'train', out/'split.csv', contains='this --split file is where train writes the split it uses')
    assert (out/'split.csv').read_bytes() == before and [p.name for p in out.iterdir()] == ['split.csv']

def test_train_fewer_images_than_the_batch(train_data, tmp_path):
    "No training batch would run (fastai drops the incomplete one): refused before anything is written."
    one_error_line(run_inprocess('train', train_data, '--out', tmp_path/'run', *TRAIN_FAST, '--bs', 16), 'train',
                   contains='training images, fewer than the batch size 16')
    assert not (tmp_path/'run').exists()

def test_train_on_a_split_of_some_images_says_so(train_data, tmp_path):
    "A split CSV listing 6 of the 8 images and an id with no image: trained on the 6, with one line counting both."
    from skinseg.data import find_pairs
    ids = find_pairs(train_data).image_id.tolist()
    (tmp_path/'half.csv').write_text('image_id,is_valid\n' + ''.join(f'{i},{j % 3 == 0}\n' for j, i in enumerate(ids[:6])) + 'NOT_THERE,True\n')
    r = run_inprocess('train', train_data, '--split', tmp_path/'half.csv', '--out', tmp_path/'run', *TRAIN_FAST, '--quiet')
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [l for l in r.stderr.splitlines() if 'half.csv' in l]
    assert len(lines) == 1 and 'leaves out 2 of the 8 images' in lines[0] and 'names 1 image id with no image there' in lines[0], r.stderr
    assert len(pd.read_csv(tmp_path/'run'/'split.csv')) == 6

def test_split_more_folds_than_lesions(train_data, tmp_path):
    from skinseg.data import find_pairs
    n = find_pairs(train_data).lesion_id.nunique()
    one_error_line(run_inprocess('split', train_data, '--folds', 20, '--out', tmp_path/'f.csv'), 'split', train_data,
                   contains=f'20 folds but only {n} lesions')
    assert not (tmp_path/'f.csv').exists()

def test_demo_refuses_too_few_images_and_an_earlier_demo(tmp_path):
    "Both refused before any work; the earlier demo's model is kept."
    one_error_line(run_inprocess('demo', '--n-images', 12, '--out', tmp_path/'d'), 'demo', contains='--n-images 12 is too few')
    (tmp_path/'d'/'model').mkdir(parents=True); (tmp_path/'d'/'model'/WEIGHTS_NAME).write_bytes(b'mine')
    line = one_error_line(run_inprocess('demo', '--out', tmp_path/'d', '--size', 32, 32, '--epochs', 1), 'demo', tmp_path/'d'/'model',
                          contains="already holds a trained model: pass --overwrite to replace it, or choose another --out")
    assert '--resume' not in line, line  # train's rule, in the demo's words: the demo has no --resume
    assert (tmp_path/'d'/'model'/WEIGHTS_NAME).read_bytes() == b'mine'

# ## A run killed while writing its checkpoint keeps the previous one
# tests/test_train.py covers SIGKILL mid-epoch then --resume, nbs/api/13_train.ipynb a checkpoint write that raises;
# this is a kill *during* the write, after which that resume starts from the intact previous checkpoint.

KILL_IN_SECOND_CHECKPOINT = textwrap.dedent('''
    import os, signal, sys
    import safetensors.torch as st
    real_save, calls = st.save_file, []
    def save_file(tensors, path, metadata=None):
        if 'checkpoint' in os.path.basename(str(path)):
            calls.append(path)
            if len(calls) == 2:  # the second epoch's checkpoint: half of it reaches the disk, then power is lost
                open(path, 'wb').write(b'\\x01' * 4096); os.kill(os.getpid(), signal.SIGKILL)
        return real_save(tensors, path, metadata=metadata)
    st.save_file = save_file
    from skinseg.cli import main
    sys.exit(main(sys.argv[1:]))
''')

def test_kill_during_checkpoint_write_keeps_previous(tmp_path):
    from skinseg.train import CHECKPOINT_NAME, read_checkpoint
    train_data, out = make_dataset(tmp_path/'data', n=5, size=(32, 32)), tmp_path/'run'
    r = subprocess.run([sys.executable, '-c', KILL_IN_SECOND_CHECKPOINT, 'train', train_data, '--out', out,
                        *TRAIN_FAST[:1], '2', *TRAIN_FAST[2:]], capture_output=True, text=True, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    assert read_checkpoint(out/CHECKPOINT_NAME)[1]['epoch'] == 1, "the half-written checkpoint replaced the good one"
    from skinseg.core import load_model
    assert load_model(out)[1]['input_size'] == [32, 32]  # the best model so far is intact
