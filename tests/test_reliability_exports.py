"""Reliability of exported models: an export beside the weights never goes on predicting with settings that
`skinseg calibrate` (or `record_inference_options`) has since changed in config.json, and `skinseg export` never
replaces a file elsewhere (another model's deployed export, a user's file) unless asked with --overwrite."""
import importlib.util, json, shlex, shutil, warnings
import pandas as pd
import pytest

from skinseg.core import read_model_config, WEIGHTS_NAME, CONFIG_NAME
from skinseg.model import load_exported
from skinseg.export import export_onnx, export_torchscript
from skinseg.tune import record_inference_options
from conftest import run_inprocess
from test_reliability_cli import one_error_line

_missing = [m for m in ('onnx', 'onnxruntime', 'onnxscript') if importlib.util.find_spec(m) is None]
needs_onnx = pytest.mark.skipif(bool(_missing), reason=f"{', '.join(_missing)} not installed: the optional `export` extra "
                                                       f"(pip install 'skinseg[export]')")
FORMATS = [pytest.param('onnx', marks=needs_onnx), 'torchscript']

@pytest.fixture
def model(tiny_model_dir, tmp_path):
    "A copy of the tiny model (its folder name has a space), to change."
    return shutil.copytree(tiny_model_dir, tmp_path/'my model')

def set_config(model, **kw):
    "Change fields of `model`'s config.json in place."
    (model/CONFIG_NAME).write_text(json.dumps(read_model_config(model) | kw, indent=2))

# ## (5) calibrate after export: the export kept predicting with the old threshold

@needs_onnx
def test_calibrate_removes_the_exports_it_makes_out_of_date(model, synthetic_data):
    "After `export` then `calibrate` moves the threshold, the model.onnx and model.pt still on the old one are removed, one warning line each."
    set_config(model, threshold=0.95)
    onnx_file, pt_file = export_onnx(model), export_torchscript(model)
    r = run_inprocess('calibrate', model, synthetic_data, '--quiet')
    new = read_model_config(model)['threshold']
    assert r.returncode == 0 and new != 0.95, (r.stderr, new)
    assert r.stderr.splitlines() == [f"skinseg calibrate: warning: {p}: removed, as it no longer matches config.json (threshold 0.95 -> {new}); "
                                     f"export the model again: skinseg export {shlex.quote(str(model))} --format {fmt}"
                                     for p, fmt in ((onnx_file, 'onnx'), (pt_file, 'torchscript'))], r.stderr
    assert not onnx_file.exists() and not pt_file.exists()
    assert load_exported(export_torchscript(model))[1]['threshold'] == new  # made again where it was

def test_record_inference_options_removes_only_an_export_that_predicts_otherwise(model):
    "The same settings keep the export; TTA switched on removes it, with one warning naming it."
    pt = export_torchscript(model)
    summary = pd.DataFrame(dict(tta=[False, True], postprocess=[False, False], dice=[.80, .85], iou=[.7, .75], n=[4, 4]))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        record_inference_options(model, summary, dict(tta=False, postprocess=False))
    assert pt.exists() and w == []
    with pytest.warns(UserWarning, match=r"model\.pt: removed, as it no longer matches config\.json \(tta False -> True\)"):
        record_inference_options(model, summary, dict(tta=True, postprocess=False))
    assert not pt.exists() and read_model_config(model)['tta'] is True

# ## (6) export over another model's deployed file

@pytest.mark.parametrize('fmt', FORMATS)
def test_export_refuses_to_replace_another_models_deployed_file(model, tiny_model_dir, tmp_path, fmt):
    "A second model exported to the file of a first (`--out deploy/clinic_model.onnx`) is refused in one line; `--overwrite` replaces it."
    write = export_onnx if fmt == 'onnx' else export_torchscript
    deployed = write(tiny_model_dir, tmp_path/'deploy'/f"clinic_model.{'onnx' if fmt == 'onnx' else 'pt'}")
    before = deployed.read_bytes()
    set_config(model, threshold=0.7)  # the other model
    r = run_inprocess('export', model, '--format', fmt, '--out', deployed)
    one_error_line(r, 'export', deployed, contains=f"already exists (a skinseg {fmt} export, perhaps of another model): "
                                                   f"pass --overwrite to replace it (overwrite=True from Python), or choose another --out")
    assert deployed.read_bytes() == before
    assert run_inprocess('export', model, '--format', fmt, '--out', deployed, '--overwrite', '--quiet').returncode == 0
    assert load_exported(deployed)[1]['threshold'] == 0.7

def test_export_replaces_unasked_only_an_export_in_the_model_folder(model, tmp_path):
    "Exporting again in the model folder needs no flag; a user's file elsewhere needs --overwrite; the model's weights and config never go."
    for _ in range(2): export_torchscript(model, model/'clinic.pt')  # the default place: tests/test_export.py
    notes = tmp_path/'notes.pt'; notes.write_text('mine')
    r = run_inprocess('export', model, '--format', 'torchscript', '--out', notes)
    one_error_line(r, 'export', notes, contains='is not a skinseg torchscript export: refusing to write over it; pass --overwrite to replace it')
    assert notes.read_text() == 'mine'
    assert run_inprocess('export', model, '--format', 'torchscript', '--out', notes, '--overwrite', '--quiet').returncode == 0
    assert load_exported(notes)[1]['input_size'] == read_model_config(model)['input_size']
    kept = {f: (model/f).read_bytes() for f in (WEIGHTS_NAME, CONFIG_NAME)}
    for f in kept:
        r = run_inprocess('export', model, '--format', 'torchscript', '--out', model/f, '--overwrite')
        one_error_line(r, 'export', model/f, contains='(it is a file of the model folder): refusing to write over it')
    assert {f: (model/f).read_bytes() for f in kept} == kept
