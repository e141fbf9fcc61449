"Reliability of model files: foreign, truncated and malicious files are refused by name, and nothing is unpickled."
import json, os, pickle, re, shlex, shutil, signal, subprocess, sys, textwrap
from pathlib import Path
import numpy as np
import pytest
import torch

from skinseg.core import (SkinsegError, build_model, default_config, save_model, read_model_config, load_model,
                          predict, WEIGHTS_NAME, CONFIG_NAME)
from conftest import run_inprocess

@pytest.fixture
def model_copy(tiny_model_dir, tmp_path) -> Path:
    "A private copy of the tiny model that a test may damage."
    return Path(shutil.copytree(tiny_model_dir, tmp_path/'model'))

def refused(fn, *names, contains=''):
    "Assert `fn()` raises `SkinsegError` whose message names every one of `names` and says `contains`."
    with pytest.raises(SkinsegError) as e: fn()
    msg = str(e.value)
    for n in names: assert str(n) in msg, f"{n} not named in: {msg}"
    assert contains in msg, f"{contains!r} not in: {msg}"
    return msg

# ## Foreign and damaged model folders

def test_good_model_loads(tiny_model_dir):
    model, cfg = load_model(tiny_model_dir)
    assert cfg['input_size'] == [32, 32] and not model.training
    assert load_model(tiny_model_dir/WEIGHTS_NAME)[1] == cfg  # the weights file's path works too

def test_missing_config_and_weights(model_copy, tmp_path):
    "A model folder without its weights, or without its config, is refused by name (no folder at all: nbs/api/02_model.ipynb)."
    (model_copy/WEIGHTS_NAME).unlink()
    refused(lambda: load_model(model_copy), model_copy/WEIGHTS_NAME, contains='missing')
    (tmp_path/'only weights').mkdir()
    refused(lambda: load_model(tmp_path/'only weights'), tmp_path/'only weights', contains=CONFIG_NAME)

@pytest.mark.parametrize('keep', [0, 8, 100, 5000, -1000, -1])
def test_truncated_weights_refused(model_copy, keep):
    w = model_copy/WEIGHTS_NAME; data = w.read_bytes()
    w.write_bytes(data[:keep] if keep >= 0 else data[:len(data) + keep])
    refused(lambda: load_model(model_copy), w)

def test_random_bytes_weights_refused(model_copy):
    w = model_copy/WEIGHTS_NAME
    w.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    refused(lambda: load_model(model_copy), w, contains='safetensors')

def test_foreign_safetensors_refused(model_copy):
    "A valid safetensors file from another model (other tensor names and shapes) is refused, naming the file."
    from safetensors.torch import save_file
    w = model_copy/WEIGHTS_NAME
    save_file({'bert.embeddings.word_embeddings.weight': torch.zeros(10, 4), 'classifier.bias': torch.zeros(2)}, str(w))
    refused(lambda: load_model(model_copy), w, contains='do not fit')

def test_weights_of_another_encoder_refused(model_copy):
    save_model(build_model(encoder='resnet18'), model_copy.parent/'r18', default_config(encoder='resnet18'))
    shutil.copy(model_copy.parent/'r18'/WEIGHTS_NAME, model_copy/WEIGHTS_NAME)
    refused(lambda: load_model(model_copy), model_copy/WEIGHTS_NAME, contains='do not fit')

@pytest.mark.parametrize('text', [  # a Hugging Face config ({"model_type": "bert"}): nbs/api/02_model.ipynb
    '{"format": "onnx"}', '[1, 2, 3]', '"skinseg-model"', 'null', '',
    'this is not JSON', '\xff\xfe binary'])
def test_foreign_config_refused(model_copy, text):
    cfg = model_copy/CONFIG_NAME
    cfg.write_bytes(text.encode('latin-1'))
    refused(lambda: read_model_config(model_copy), cfg)
    refused(lambda: load_model(model_copy), cfg)

def test_deeply_nested_config_refused(model_copy):
    "JSON nested deeper than Python's recursion limit is a corrupt config, not a RecursionError."
    cfg = model_copy/CONFIG_NAME
    cfg.write_text('[' * 100_000)
    refused(lambda: read_model_config(model_copy), cfg)

@pytest.mark.parametrize('field,value', [('n_classes', 'two'), ('input_size', 'big'), ('input_size', [0, 0]), ('mean', [0.5]),
                                         ('arch', 'transformer')])  # encoder 'vgg99', threshold 'high': nbs/api/02_model.ipynb
def test_config_with_bad_values_refused(model_copy, field, value):
    "A skinseg config whose fields have impossible values is refused, naming config.json and the field."
    cfg = model_copy/CONFIG_NAME
    cfg.write_text(json.dumps(json.loads(cfg.read_text()) | {field: value}))
    def use(): predict(np.zeros((20, 30, 3), np.uint8), model=load_model(model_copy))
    msg = refused(use)
    assert CONFIG_NAME in msg or field in msg or repr(value) in msg, msg

def test_load_error_is_one_line(model_copy):
    "A mismatch message fits on one line, so the CLI prints one line, not PyTorch's multi-line report."
    cfg = model_copy/CONFIG_NAME
    cfg.write_text(json.dumps(json.loads(cfg.read_text()) | {'n_classes': 3}))
    msg = refused(lambda: load_model(model_copy), model_copy/WEIGHTS_NAME, contains='do not fit')
    assert '\n' not in msg, msg

# ## Nothing supplied by a user is ever unpickled

class Payload:
    "A pickle that runs a shell command when it is loaded."
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (os.system, (f'touch {shlex.quote(str(self.marker))}',))

def malicious_files(folder:Path, marker:Path) -> dict:
    "The payload as a raw pickle and as a torch.save zip, under several names: {kind: path}."
    folder.mkdir(parents=True, exist_ok=True)
    raw = pickle.dumps({'conv1.weight': Payload(marker)})
    pickle.loads(raw); assert marker.exists(), "the payload is not live: the test would prove nothing"
    marker.unlink()
    files = {}
    for name in ['raw.pth', 'raw.pt', 'raw.bin', 'raw.ckpt']: (folder/name).write_bytes(raw); files[name] = folder/name
    torch.save({'state_dict': {'conv1.weight': Payload(marker)}}, folder/'zip.pth'); files['zip.pth'] = folder/'zip.pth'
    assert not marker.exists()
    return files

def test_malicious_pickle_as_encoder_weights(tmp_path):
    marker = tmp_path/'PWNED'
    for kind, path in malicious_files(tmp_path/'evil', marker).items():
        for arch in ['smp', 'fastai']:
            refused(lambda: build_model(arch, weights=path, size=(32, 32)), path)
            assert not marker.exists(), f"build_model({arch!r}, weights={kind}) unpickled the file"

def test_malicious_pickle_as_model_folder(model_copy, tmp_path):
    marker = tmp_path/'PWNED'
    files = malicious_files(tmp_path/'evil', marker)
    for path in files.values():
        shutil.copy(path, model_copy/WEIGHTS_NAME)
        refused(lambda: load_model(model_copy), model_copy/WEIGHTS_NAME)
        assert not marker.exists()
    for path in files.values():  # a model folder holding only pickles beside a good config
        (model_copy/WEIGHTS_NAME).unlink(missing_ok=True)
        shutil.copy(path, model_copy/'pytorch_model.bin'); shutil.copy(path, model_copy/'model.pth')
        refused(lambda: load_model(model_copy), model_copy/WEIGHTS_NAME)
        assert not marker.exists()

# ## A save killed midway never replaces the previous good model (a save that raises: nbs/api/13_train.ipynb)

def test_save_killed_midway_keeps_previous_model(model_copy, tiny_model_dir):
    "A process SIGKILLed while writing the weights leaves the old model loadable, byte for byte."
    before = (model_copy/WEIGHTS_NAME).read_bytes()
    script = textwrap.dedent(f'''
        import os, signal, safetensors.torch as st
        import skinseg.core as core
        def dying_save(model, path, metadata=None):
            open(path, 'wb').write(b'\\x00' * 4096)  # part of the file is on disk, then the process dies
            os.kill(os.getpid(), signal.SIGKILL)
        st.save_model = dying_save
        model = core.build_model()
        core.save_model(model, {str(model_copy)!r}, core.default_config(input_size=[32, 32]))
    ''')
    r = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert (model_copy/WEIGHTS_NAME).read_bytes() == before
    model, cfg = load_model(model_copy)
    assert cfg['input_size'] == [32, 32]

# ## Review: configs that would silently score wrong, a text file as --weights, calibrating on training images

@pytest.mark.parametrize('field,value', [('mean', [123.675, 116.28, 103.53]), ('std', [58.395, 57.12, 57.375]),
                                         ('std', [0.229, 0.0, 0.225]), ('mean', [-0.1, 0.4, 0.4])])
def test_config_normalisation_not_on_the_0_1_scale_refused(model_copy, field, value):
    "0-255 ImageNet values used to pass (lesion area 30.8% -> 77.4%); now config.json and the field are named."
    cfg = model_copy/CONFIG_NAME
    cfg.write_text(json.dumps(json.loads(cfg.read_text()) | {field: value}))
    msg = refused(lambda: load_model(model_copy), cfg, contains=f"field {field!r} is {value}; expected three")
    assert "on the 0-1 scale (ImageNet's are [" in msg and '\n' not in msg

def test_config_without_input_size_refused(model_copy, tmp_path):
    "A config without `input_size` used to run the network at 256x256 whatever it was trained at."
    cfg = model_copy/CONFIG_NAME
    cfg.write_text(json.dumps({k: v for k, v in json.loads(cfg.read_text()).items() if k != 'input_size'}))
    refused(lambda: read_model_config(model_copy), cfg, contains="field 'input_size' is missing")
    from PIL import Image
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path/'x.jpg')
    r = run_inprocess('predict', model_copy, tmp_path/'x.jpg', '--out', tmp_path/'out')
    assert r.returncode == 2 and "field 'input_size' is missing" in r.stderr, r.stderr

@pytest.mark.parametrize('text', ['experiment notes\n', 'notes', 'e', '{"a": 1}'])
def test_text_file_as_weights_is_one_line(tmp_path, text):
    "`--weights notes.txt` gave 'KeyError: 101' or PyTorch's multi-line unpickling report; now one line naming the file."
    notes = tmp_path/'notes.txt'; notes.write_text(text)
    for arch in ('smp', 'fastai'):
        msg = refused(lambda: build_model(arch, weights=notes, size=(32, 32)), notes, contains='not a weights file')
        assert '\n' not in msg and 'Error' not in msg, msg

def test_calibrate_refuses_images_the_model_trained_on(model_copy, synthetic_data):
    "`skinseg calibrate` on images its split.csv lists for training changed the threshold silently; now one line, nothing changed."
    import pandas as pd
    from skinseg.layouts import find_pairs
    ids = find_pairs(synthetic_data).image_id.tolist()
    pd.DataFrame(dict(image_id=ids, is_valid=[i < 2 for i in range(len(ids))])).to_csv(model_copy/'split.csv', index=False)
    before = (model_copy/CONFIG_NAME).read_bytes()
    r = run_inprocess('calibrate', model_copy, synthetic_data)
    assert r.returncode == 2 and r.stderr.strip() == (f"skinseg calibrate: error: {model_copy/'split.csv'}: the model trained on "
        f"{len(ids) - 2} of the {len(ids)} images given (e.g. {ids[2]}.jpg): scores on them flatter it; choose its threshold "
        "and options on images it did not train on"), r.stderr
    assert (model_copy/CONFIG_NAME).read_bytes() == before
    (model_copy/'split.csv').unlink()  # without its split nothing can be checked: calibrated as before
    assert run_inprocess('calibrate', model_copy, synthetic_data, '--quiet').returncode == 0

def test_calibrate_keeps_the_threshold_when_its_gain_is_noise(model_copy, synthetic_data):
    "A threshold chosen on one image was stored without a word; now the model's threshold stays, with one warning line saying why, kept in config.json. Eight images: moved, no warning."
    r = run_inprocess('calibrate', model_copy, synthetic_data, '--limit', 1)
    cfg = read_model_config(model_copy)
    assert r.returncode == 0 and cfg['threshold'] == 0.5 and 'threshold stays 0.5' in r.stdout, (r.stdout, r.stderr)
    warning = re.fullmatch(f"skinseg calibrate: warning: {re.escape(str(synthetic_data))}: (the gain in mean Dice of threshold [0-9.]+ over 0.5, "
                           r"\+0\.\d{4} on 1 image, is measured on one image, so it may be noise: the threshold stays 0.5; more labelled images would settle it)\n", r.stderr)
    assert warning and cfg['threshold_calibration']['caveats'] == [warning.group(1)], (r.stderr, cfg['threshold_calibration'])
    r = run_inprocess('calibrate', model_copy, synthetic_data)
    assert r.returncode == 0 and r.stderr == '' and read_model_config(model_copy)['threshold'] != 0.5, r.stderr
