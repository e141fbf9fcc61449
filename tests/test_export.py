"Exported models (ONNX, TorchScript) predict the same masks as PyTorch; `skinseg export` and the ONNX backend of predict."
import importlib.util, json, os, subprocess, sys
import numpy as np
import pytest
import torch
from pathlib import Path
from PIL import Image

from skinseg.core import predict, SkinsegError, read_model_config
from conftest import run_inprocess, make_dataset

export = pytest.importorskip('skinseg.export')
if importlib.util.find_spec('onnxruntime') is None: pytest.skip('onnxruntime is not installed', allow_module_level=True)
ort = export.import_onnxruntime()

@pytest.fixture(scope='module')
def images(tmp_path_factory):
    "Synthetic images of two sizes, and a random-pixel one."
    data = make_dataset(tmp_path_factory.mktemp('data')/'set', n=4, size=(60, 80))
    imgs = sorted(data.rglob('*.jpg'))
    return imgs + [np.random.default_rng(0).integers(0, 255, (45, 61, 3), dtype=np.uint8)]

@pytest.fixture(scope='module')
def onnx_file(tiny_model_dir, tmp_path_factory):
    return export.export_onnx(tiny_model_dir, tmp_path_factory.mktemp('onnx')/'tiny.onnx')

def close_masks(model_dir, exported, images):
    c = export.compare_exported(model_dir, exported, images)
    assert c['max_prob_diff'] < 1e-3, c
    assert c['mask_pixels_differing'] <= max(2, 1e-4 * c['pixels']), c
    return c

def test_onnx_same_masks_as_pytorch(tiny_model_dir, onnx_file, images):
    close_masks(tiny_model_dir, onnx_file, images)
    ref = predict(images, tiny_model_dir, return_prob=True, bf16=False)  # the export runs in float32
    got = predict(images, onnx_file, return_prob=True)   # the ONNX backend of predict, through onnxruntime
    for a, b in zip(ref, got):
        assert a.mask.shape == b.mask.shape
        np.testing.assert_allclose(a.prob, b.prob, atol=1e-3)

def test_onnx_dynamic_batch_opset_and_metadata(tiny_model_dir, onnx_file):
    import onnx
    m = onnx.load(str(onnx_file))
    assert max(o.version for o in m.opset_import if o.domain in ('', 'ai.onnx')) >= 17
    cfg = json.loads({p.key: p.value for p in m.metadata_props}['skinseg_config'])
    assert cfg['input_size'] == read_model_config(tiny_model_dir)['input_size']
    s = ort.InferenceSession(str(onnx_file), providers=['CPUExecutionProvider'])
    h, w = cfg['input_size']
    net = export.load_model(tiny_model_dir)[0]
    for n in (1, 5):
        x = torch.randn(n, 3, h, w)
        out = s.run(None, {'image': x.numpy()})[0]
        with torch.inference_mode(): np.testing.assert_allclose(out, net(x).numpy(), atol=1e-3)

@pytest.fixture(scope='module')
def ts_file(tiny_model_dir, tmp_path_factory):
    "TorchScript written by `skinseg export --format torchscript --out FOLDER`."
    out = tmp_path_factory.mktemp('ts')/'exports'
    r = run_inprocess('export', tiny_model_dir, '--format', 'torchscript', '--out', out)
    assert r.returncode == 0 and 'mask pixels differ' in r.stdout, r.stderr
    return out/'model.pt'

def test_torchscript_same_masks_and_config(tiny_model_dir, images, ts_file):
    path = ts_file
    close_masks(tiny_model_dir, path, images)
    model, cfg = export.load_torchscript(path)
    assert cfg['input_size'] == read_model_config(tiny_model_dir)['input_size']
    assert predict(images[0], path).mask.shape == (60, 80)

def test_bad_files_are_named(tmp_path, images):
    (tmp_path/'x.onnx').write_bytes(b'garbage')
    with pytest.raises(SkinsegError, match='x.onnx: not a readable ONNX model'): export.load_onnx(tmp_path/'x.onnx')
    with pytest.raises(SkinsegError, match='TorchScript file not found'): export.load_torchscript(tmp_path/'none.pt')
    with pytest.raises(SkinsegError, match='x.onnx'): predict(images[0], tmp_path/'x.onnx')

def test_command_errors(tiny_model_dir, tmp_path):
    model = Path(tiny_model_dir)
    r = run_inprocess('export', model, '--format', 'tflite')
    assert r.returncode == 2 and "unknown export format 'tflite'" in r.stderr
    r = run_inprocess('export', tmp_path/'no model')
    assert r.returncode == 2 and 'no model folder' in r.stderr

def test_onnxruntime_telemetry_is_off(onnx_file, tmp_path):
    "Running an ONNX model writes no telemetry session into TMPDIR and no database under the home folder."
    tmp, home = tmp_path/'tmp', tmp_path/'home'; tmp.mkdir(); home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ('ORT_DISABLE_TELEMETRY', 'XDG_CACHE_HOME')}
    code = f"import numpy as np; from skinseg.core import predict; predict(np.zeros((8, 8, 3), np.uint8), {str(onnx_file)!r})"
    subprocess.run([sys.executable, '-c', code], env=env | dict(TMPDIR=str(tmp), HOME=str(home)), check=True, timeout=120)
    assert [p for p in [*tmp.rglob('*'), *home.rglob('*')] if p.is_file()] == []
