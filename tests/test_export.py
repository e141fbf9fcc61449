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
