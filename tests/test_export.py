"""Exported models beyond nbs/api/16_export.ipynb: the ONNX graph's opset and its outputs at other batch sizes,
predict from a TorchScript path, a broken .onnx given to predict, and onnxruntime's telemetry kept off (a subprocess)."""
import importlib.util, os, subprocess, sys
import numpy as np
import pytest
import torch

import skinseg.export as export
from skinseg.core import predict, SkinsegError, read_model_config
from conftest import make_dataset

_missing = [m for m in ('onnx', 'onnxruntime', 'onnxscript') if importlib.util.find_spec(m) is None]
needs_onnx = pytest.mark.skipif(bool(_missing), reason=f"{', '.join(_missing)} not installed: the optional `export` extra "
                                                       f"(pip install 'skinseg[export]')")

@pytest.fixture(scope='module')
def images(tmp_path_factory):
    "Synthetic images of two sizes, and a random-pixel one."
    data = make_dataset(tmp_path_factory.mktemp('data')/'set', n=4, size=(60, 80))
    imgs = sorted(data.rglob('*.jpg'))
    return imgs + [np.random.default_rng(0).integers(0, 255, (45, 61, 3), dtype=np.uint8)]

@pytest.fixture(scope='module')
def onnx_file(tiny_model_dir, tmp_path_factory):
    return export.export_onnx(tiny_model_dir, tmp_path_factory.mktemp('onnx')/'tiny.onnx')

@needs_onnx
def test_onnx_opset_and_outputs_at_other_batch_sizes(tiny_model_dir, onnx_file):
    "The graph uses opset 17 or later, and at batch sizes other than the traced one it gives PyTorch's logits."
    import onnx
    m = onnx.load(str(onnx_file))
    assert max(o.version for o in m.opset_import if o.domain in ('', 'ai.onnx')) >= 17
    s = export.import_onnxruntime().InferenceSession(str(onnx_file), providers=['CPUExecutionProvider'])
    h, w = read_model_config(tiny_model_dir)['input_size']
    net = export.load_model(tiny_model_dir)[0]
    for n in (1, 5):
        x = torch.randn(n, 3, h, w)
        out = s.run(None, {'image': x.numpy()})[0]
        with torch.inference_mode(): np.testing.assert_allclose(out, net(x).numpy(), atol=1e-3)

def test_predict_from_a_torchscript_path(tiny_model_dir, images, tmp_path):
    "predict takes an exported `.pt` file's path and gives masks at each image's size (the notebook passes a loaded pair)."
    path = export.export_torchscript(tiny_model_dir, tmp_path)
    assert [r.mask.shape for r in predict(images[:2], path)] == [(60, 80), (60, 80)]

def test_predict_names_a_broken_onnx_file(tmp_path, images):
    (tmp_path/'x.onnx').write_bytes(b'garbage')
    with pytest.raises(SkinsegError, match='x.onnx: not a readable ONNX model'): predict(images[0], tmp_path/'x.onnx')

@needs_onnx
def test_onnxruntime_telemetry_is_off(onnx_file, tmp_path):
    "Running an ONNX model writes no telemetry session into TMPDIR and no database under the home folder."
    tmp, home = tmp_path/'tmp', tmp_path/'home'; tmp.mkdir(); home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ('ORT_DISABLE_TELEMETRY', 'XDG_CACHE_HOME')}
    code = f"import numpy as np; from skinseg.core import predict; predict(np.zeros((8, 8, 3), np.uint8), {str(onnx_file)!r})"
    subprocess.run([sys.executable, '-c', code], env=env | dict(TMPDIR=str(tmp), HOME=str(home)), check=True, timeout=120)
    assert [p for p in [*tmp.rglob('*'), *home.rglob('*')] if p.is_file()] == []

# ## Review of the export command: never over the model or a user's file, opsets outside the supported range refused

def test_export_never_writes_over_the_model_or_a_users_file(tiny_model_dir, tmp_path):
    "`--out` naming the model's own weights or config, or a user's file, is refused in one line and nothing is written."
    import shutil
    from conftest import run_inprocess
    model = shutil.copytree(tiny_model_dir, tmp_path/'model')
    notes = tmp_path/'notes.txt'; notes.write_text('my notes\n')
    before = {p.name: p.read_bytes() for p in model.iterdir()}
    for fmt in ('torchscript', 'onnx'):
        for out in (model/'model.safetensors', model/'config.json', notes):
            r = run_inprocess('export', model, '--format', fmt, '--out', out)
            assert r.returncode == 2 and r.stderr.count('\n') == 1, r.stderr
            assert f'{out}: already exists and is not a skinseg {fmt} export' in r.stderr, r.stderr
    assert {p.name: p.read_bytes() for p in model.iterdir()} == before and notes.read_text() == 'my notes\n'

def test_export_replaces_an_earlier_export(tiny_model_dir, tmp_path):
    "An earlier export of the same format is replaced, as exporting twice to the default place must work."
    import shutil
    model = shutil.copytree(tiny_model_dir, tmp_path/'model')
    first = export.export_torchscript(model)
    assert export.export_torchscript(model) == first == model/'model.pt'
    assert export.load_exported(first)[1]['input_size'] == read_model_config(model)['input_size']

@pytest.mark.parametrize('opset', [10, 16, 99])
def test_export_refuses_an_unsupported_opset(tiny_model_dir, tmp_path, opset):
    "`--opset 10` printed onnxscript's traceback and wrote an opset-18 file; now one line, and no file."
    from conftest import run_inprocess
    r = run_inprocess('export', tiny_model_dir, '--out', tmp_path/'m.onnx', '--opset', opset)
    assert r.returncode == 2 and r.stderr.strip() == f"skinseg export: error: ONNX opset {opset} is not supported: use 17 to " \
        f"{__import__('onnx').defs.onnx_opset_version()} (default 18)", r.stderr
    assert list(tmp_path.iterdir()) == []

@needs_onnx
def test_export_at_opset_17_is_quiet_and_is_opset_17(tiny_model_dir, tmp_path):
    "The converter's warnings (here from 18 down to 17) stay off the user's screen, and the file has the opset asked for."
    import onnx
    from conftest import run_skinseg
    r = run_skinseg('export', tiny_model_dir, '--out', tmp_path/'m.onnx', '--opset', 17, '--quiet')
    assert r.returncode == 0 and r.stdout == '' and r.stderr == '', r.stderr
    m = onnx.load(str(tmp_path/'m.onnx'))
    assert [o.version for o in m.opset_import if o.domain in ('', 'ai.onnx')] == [17]

def test_onnx_export_leaves_one_file(tiny_model_dir, tmp_path):
    "The exporter wrote the weights to a hidden `.model.onnx.tmpPID.data` beside the export and left it there (about 98 MB for the U-Net)."
    out = export.export_onnx(tiny_model_dir, tmp_path/'m.onnx')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['m.onnx'], sorted(p.name for p in tmp_path.iterdir())
