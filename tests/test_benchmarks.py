"The benchmark scripts run end to end in `--quick` mode and write results of the documented shape (never timings)."
import importlib.util, json
from pathlib import Path

import skinseg.core  # first: it sets up torchvision before anything imports it

BENCH = Path(__file__).resolve().parent.parent/'benchmarks'

def load(name):
    "Import `benchmarks/NAME.py` as a module (the scripts are not a package)."
    spec = importlib.util.spec_from_file_location(f'bench_{name}', BENCH/f'{name}.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

def run_quick(name, tmp_path):
    "Run a benchmark's `main` in `--quick` mode; return what it wrote to its JSON file (checked to equal what it returned)."
    out = tmp_path/f'{name}.json'
    res = load(name).main(['--quick', '--out', str(out)])
    data = json.loads(out.read_text())
    assert data['benchmark'] == res['benchmark'] and data['quick'] is True
    h = data['hardware']
    assert h['cores'] >= 1 and h['torch'] and h['torch_threads'] >= 1 and 'cpu' in h
    assert f'{name}.py' in data['command'] and '--quick' in data['command']
    return data

def positive(d:dict, keys): return all(d[k] > 0 for k in keys)

def test_interleaved_rotates_and_drops_warmup():
    common = load('common')
    calls = []
    t = common.interleaved({'a': lambda: calls.append('a'), 'b': lambda: calls.append('b')}, repeats=3, warmup=1)
    assert calls == ['a', 'b', 'b', 'a', 'a', 'b', 'b', 'a']  # 4 rounds, order rotated each round
    assert [len(v['times_s']) for v in t.values()] == [3, 3]  # the warm-up round is not in the times
    assert all(v['min_s'] <= v['median_s'] for v in t.values())

def test_prepare_matches_predict_input():
    "The benchmarks' input batches are the ones predict builds: same resize and normalisation."
    import numpy as np, torch
    common = load('common')
    a = np.random.default_rng(0).integers(0, 255, (45, 60, 3), dtype=np.uint8)
    x = common.prepare([a, a], (24, 32))
    assert x.shape == (2, 3, 24, 32) and x.is_contiguous()
    cfg = skinseg.core.default_config(input_size=[24, 32])
    ref = skinseg.core.to_batch([skinseg.core.load_resized(a, (24, 32))[0]], cfg['mean'], cfg['std'])
    torch.testing.assert_close(x[:1], ref.contiguous())

def test_predict_bench(tmp_path):
    d = run_quick('bench_predict', tmp_path)
    assert positive(d['images_per_s'], ['forward', 'forward_nchw', 'predict_arrays', 'predict_files'])
    assert set(d['ratio_to_forward']) == {'predict_files', 'predict_arrays', 'forward_nchw', 'predict_files_1stream', 'predict_arrays_1stream'}
    for source in ('files', 'arrays'):
        assert set(d['stage_ms_per_image'][source]) == {'read_resize', 'normalise', 'forward_softmax', 'upsample_threshold'}
        assert 0 < d['ceiling_ratio'][source] < 1
    assert d['image_size'] == [450, 600] and d['goal_ratio'] == 0.90
    for lat in d['latency_ms'].values(): assert 0 < lat['p50_ms'] <= lat['p95_ms']
    drafts = d['jpeg_draft']
    assert list(drafts) == ['full_decode', 'draft_4x_input', 'draft_2x_input', 'draft_1x_input']
    assert drafts['full_decode']['mean_abs_diff_levels'] == 0 and drafts['full_decode']['decoded_size'] == [600, 450]
    sizes = [v['decoded_size'][0] for v in drafts.values()]
    assert sizes == sorted(sizes, reverse=True)  # a smaller draft request never decodes a larger image
    assert positive({k: v['ms_per_image'] for k, v in d['array_resize'].items() if k != 'mean_abs_diff_levels'}, ['bilinear', 'bilinear_reducing_gap_2'])

def test_inference_variants_bench(tmp_path):
    d = run_quick('bench_inference_variants', tmp_path)
    names = {'fp32', 'fp32_channels_last_input', 'channels_last', 'bf16', 'bf16_channels_last', 'bf16_folded_bn_weights', 'onnxruntime_fp32'}
    assert set(d['images_per_s']) == names and positive(d['images_per_s'], names)
    assert d['speedup_vs_fp32']['fp32'] == 1 and d['fastest_within_0005_dice'] in names
    assert d['model_is_trained'] is False and d['dice_checked'] is False  # quick mode never claims Dice
    if skinseg.core.find_data_dir() is None: assert d['quality'] is None
    else:
        q = d['quality']
        assert set(q) == names and d['n_valid'] == 4
        assert q['fp32']['dice_delta_vs_fp32'] == 0 and q['fp32']['pixel_disagreement_vs_fp32'] == 0
        assert all(0 <= v['mean_dice'] <= 1 and 0 <= v['pixel_disagreement_vs_fp32'] <= 1 for v in q.values())

def test_train_step_bench(tmp_path):
    d = run_quick('bench_train_step', tmp_path)
    # quick mode runs one variant per option: bf16 + channels_last, the fastai DynamicUnet, no cache, plain PyTorch
    assert set(d['images_per_s']) == {'learner_smp_bf16_channels_last', 'learner_dynamicunet_fp32', 'learner_smp_nocache_bf16', 'plain_smp_bf16'}
    assert d['speedup_vs_baseline'][d['baseline']] == 1
    assert positive(d['s_per_step'], d['s_per_step'])
    assert all(len(v) == d['timed_steps_per_round'] * d['rounds'] for v in d['details'].values())

def test_matmul_and_peak_bench(tmp_path):
    d = run_quick('bench_bf16_matmul_and_peak', tmp_path)
    assert positive(d['matmul_gflops'], ['fp32', 'bf16', 'conv1x1_fp32', 'conv1x1_bf16'])
    for dt in ('fp32', 'bf16'): assert d['measured_peak_gflops'][dt] == max(d['matmul_gflops'][dt], d['matmul_gflops'][f'conv1x1_{dt}'])
    for v in d['model_gflop_per_image'].values():
        assert 2 <= v['train_fwd_bwd_gflop'] / v['forward_gflop'] <= 3.5  # backward costs about twice the forward
    assert set(d['fraction_of_peak']) == {'infer_fp32', 'infer_bf16', 'train_fp32', 'train_bf16'}
    assert d['theoretical_peak']['flops_per_cycle_per_core']['fp32'] in (32, 64)

def test_gpu_recipe_quick_on_cpu(tmp_path):
    d = run_quick('gpu_recipe', tmp_path)
    assert [r['bs'] for r in d['runs']] == [4, 8] and d['device'] == 'cpu'
    for r in d['runs']:
        assert len(r['epochs']) == d['epochs'] and 0 <= r['final_valid_iou'] <= 1 and r['median_train_images_per_s'] > 0

def test_torch_in_threads_bench(tmp_path):
    d = run_quick('bench_torch_in_threads', tmp_path)
    assert set(d['forward_ms_per_image_best']) == {'clean', 'helper_alive', 'after_shutdown'}
    assert positive(d['forward_ms_per_image_best'], ['clean', 'helper_alive', 'after_shutdown']) and d['slowdown_helper_alive'] > 0

def test_bf16_training_bench(tmp_path):
    d = run_quick('bench_bf16_training', tmp_path)
    assert set(d['runs']) == {'fp32', 'bf16'} and all(len(v) == len(d['seeds']) for v in d['runs'].values())
    for runs in d['runs'].values():
        for r in runs.values(): assert r['img_per_s'] > 0 and 0 <= r['dice'] <= 1 and 0 <= r['iou'] <= r['dice'] + 1e-9
    assert d['speedup'] > 0 and set(d['dice_spread_between_seeds']) == {'fp32', 'bf16'}

def test_carry_over_rescore_names_a_folder_without_model(tmp_path):
    "`carry_over.py --rescore` on a folder that is not a model says so in one line, naming it; no traceback."
    import subprocess, sys
    r = subprocess.run([sys.executable, str(BENCH/'carry_over.py'), '--rescore', str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 1 and 'Traceback' not in r.stderr
    assert r.stderr.strip() == f"{tmp_path}: no config.json, not a model folder (this script keeps each run's model in RUN_DIR/model)"

def test_carry_over_rescore_refuses_a_model_trained_on_its_test_images(tmp_path):
    "`carry_over.py --rescore` on a model whose split.csv trained on ISIC test images stops in one line naming that file, before any scoring."
    import subprocess, sys, pytest
    from skinseg.core import find_data_dir, build_model, default_config, save_model
    if find_data_dir('ham10000') is None or find_data_dir('isic2017_train') is None:
        pytest.skip("HAM10000 and ISIC 2017 not found under ../shared/data or $SKINSEG_DATA")
    _, isic = load('carry_over').splits()
    model = save_model(build_model(), tmp_path/'model', default_config(input_size=[64, 96]))
    isic.assign(is_valid=isic.part != 'test')[['image_id', 'is_valid']].to_csv(model/'split.csv', index=False)
    results = BENCH/'results'/'carry_over.json'
    before = results.read_bytes() if results.is_file() else None
    r = subprocess.run([sys.executable, str(BENCH/'carry_over.py'), '--rescore', str(model)], capture_output=True, text=True)
    assert r.returncode == 1 and 'Traceback' not in r.stderr, r.stderr[-2000:]
    assert r.stderr.strip().startswith(f"{model/'split.csv'}: the model trained on 1000 of the ") and len(r.stderr.strip().splitlines()) == 1
    assert (results.read_bytes() if results.is_file() else None) == before  # nothing scored, nothing recorded

def test_carry_over_fov_and_blur_augmentations():
    "`--aug flips+fov` blacks out the outside of a circle and makes the mask background exactly there; `flips+blur` smooths the image only; neither touches validation batches."
    import torch
    from fastai.vision.all import TensorImage, TensorMask
    co = load('carry_over')
    torch.manual_seed(0)
    x, y = TensorImage(torch.rand(8, 3, 32, 48) + 0.1), TensorMask(torch.ones(8, 32, 48, dtype=torch.long))
    xf, yf = (t.as_subclass(torch.Tensor) for t in co.RandomFOV(p=1.)((x, y), split_idx=0))  # plain tensors: fastai's types do not compare with each other
    black = (xf == 0).all(1)
    corners = black[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.any(1).all() and not black[:, 16, 24].any()  # a corner out of view in every image, the centre in it
    assert torch.equal(yf == 0, black)
    xv, yv = co.RandomFOV(p=1.)((x, y), split_idx=1)
    assert torch.equal(xv, x) and torch.equal(yv, y)
    xb, yb = co.RandomBlur(p=1.)((x, y), split_idx=0)
    assert torch.equal(co.RandomBlur(p=1.)(x, split_idx=1), x)
    def roughness(t): return float((t[..., 1:] - t[..., :-1]).abs().mean())
    assert roughness(xb) < 0.7 * roughness(x) and torch.equal(yb, y) and abs(float(xb.mean() - x.mean())) < 0.01

def test_carry_over_records_of_runs_that_finish_together_are_all_kept(tmp_path):
    "Two runs side by side can append their records at the same moment: none is lost."
    import multiprocessing as mp
    co = load('carry_over')
    out = tmp_path/'runs.json'
    procs = [mp.get_context('fork').Process(target=lambda k=k: [co.append_result(dict(run=k, i=i), out) for i in range(20)]) for k in range(4)]
    for p in procs: p.start()
    for p in procs: p.join()
    recs = json.loads(out.read_text())
    assert sorted((r['run'], r['i']) for r in recs) == [(k, i) for k in range(4) for i in range(20)]

def test_carry_over_scores_with_skinsegs_metrics(tmp_path):
    "carry_over.py's per-image scores at a threshold are skinseg's own: `per_image_scores` of `predict`'s masks."
    import numpy as np
    from skinseg.synthetic import synthetic_dataset
    from skinseg.layouts import find_pairs
    from skinseg.model import build_model, default_config, save_model
    from skinseg.core import predict
    from skinseg.metrics import per_image_scores
    co = load('carry_over')
    df = find_pairs(synthetic_dataset(tmp_path/'syn', n=4, size=(40, 56), seed=0))
    model = save_model(build_model(pretrained=False), tmp_path/'model', default_config(input_size=[32, 64]))
    s = co.score(model, df, thresholds=np.array([0.3, 0.5]), bs=2)
    ref = per_image_scores(list(df['mask']), predict(list(df.image), model, tta=False, postprocess=False))
    np.testing.assert_allclose(s['dice'][:, 1], ref.dice, atol=1e-6)
    np.testing.assert_allclose(s['area_ratio'][:, 1], ref.area_ratio, atol=1e-6)
    summary = co.summarize(s, 1)
    assert summary['n'] == 4 and abs(summary['dice'] - round(ref.dice.mean(), 4)) < 1e-9

def test_carry_over_failures_lists_the_images_every_run_fails(monkeypatch):
    "`--failures`: per run, the images below IoU 0.65 at threshold 0.5 (as `score` gives them); in all runs, the images every run has below it."
    import numpy as np, pandas as pd
    co = load('carry_over')
    ious = {'a': [0.9, 0.5, 0.6, 0.7], 'b': [0.4, 0.64, 0.9, 0.66]}  # image 1 fails in both; 0, 2 in one each; 3 in none
    monkeypatch.setattr(co, 'score', lambda d, te, thresholds: dict(iou=np.array(ious[d.name])[:, None], gt_px=np.array([[300.], [600.], [900.], [1200.]]), px=np.full((4, 1), 150 * 200)))  # 200x150 images
    te = pd.DataFrame(dict(image_id=['i0', 'i1', 'i2', 'i3']))
    rec = co.failures([co.Path('runs/a'), co.Path('runs/b')], te)
    assert [r['below'] for r in rec['runs']] == [2, 2]
    assert (rec['failed_by_all'], rec['failed_by_any'], rec['failed_by_all_ids']) == (1, 3, ['i1'])
    assert rec['failed_by_all_mean_iou'] == 0.57 and rec['share_of_a_runs_failures_failed_by_all'] == 0.5
    assert rec['lesion_share_median'] == dict(failed_by_all=0.02, all_images=0.025)  # of each image's own pixels
