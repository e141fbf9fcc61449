"""`predict` and `skinseg predict` beyond nbs/api/03_core.ipynb: masks in the right place for every size and kind of input,
batching, streams, bf16, TTA and post-processing effects, huge images, and the command run as a subprocess."""
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from skinseg.core import (predict, iter_predict, read_mask, default_config, keep_largest_lesion, prob_to_mask,
                          skinseg_predict, SkinsegError, bf16_supported, get_model)
from skinseg.model import inference_model
from conftest import run_skinseg, run_inprocess, make_dataset, write_bad_images
from skinseg.basics import written_by_skinseg

class RedIsLesion(torch.nn.Module):
    "A stand-in network whose answer is known: lesion wherever the (normalised) red channel is below zero."
    def forward(self, x): return torch.stack([torch.zeros_like(x[:, 0]), -20 * x[:, 0]], 1)

ORACLE = (RedIsLesion(), default_config(input_size=[96, 128]))

def drawn_lesions(h, w, boxes):
    "A skin-coloured image with dark ellipses in `boxes` (fractions of the size), and their true mask."
    img = Image.new('RGB', (w, h), (220, 170, 150)); m = Image.new('L', (w, h), 0)
    for x0, y0, x1, y1 in boxes:
        box = [x0 * w, y0 * h, x1 * w, y1 * h]
        ImageDraw.Draw(img).ellipse(box, fill=(60, 30, 20)); ImageDraw.Draw(m).ellipse(box, fill=255)
    return np.asarray(img), np.asarray(m) > 0

def iou(a, b): return (a & b).sum() / (a | b).sum()

def test_mask_comes_back_at_original_size_and_place():
    "Any input size: the mask has the image's size and covers the drawn lesion (IoU > 0.9 through the resize)."
    for h, w in [(150, 200), (450, 600), (37, 301), (1000, 750)]:
        img, truth = drawn_lesions(h, w, [(0.3, 0.2, 0.8, 0.7)])
        r = predict(img, ORACLE)
        assert r.mask.shape == (h, w) and r.mask.dtype == np.uint8 and set(np.unique(r.mask)) <= {0, 255}
        assert iou(r.mask > 0, truth) > 0.9, (h, w, iou(r.mask > 0, truth))
        x0, y0, x1, y1 = r.bbox
        assert abs(x0 - 0.3 * w) <= 0.03 * w + 2 and abs(y1 - 0.7 * h) <= 0.03 * h + 2

def test_grayscale_rgba_palette_and_16bit_inputs(tmp_path):
    "Arrays and files in other modes give the same mask as the RGB original."
    img, _ = drawn_lesions(150, 200, [(0.3, 0.2, 0.8, 0.7)])
    ref = predict(img, ORACLE).mask
    pil = Image.fromarray(img)
    pil.convert('L').save(tmp_path/'gray.png'); pil.convert('RGBA').save(tmp_path/'rgba.png')
    pil.convert('P').save(tmp_path/'palette.png')
    Image.fromarray(img[..., 0].astype(np.uint16) * 257).save(tmp_path/'deep16.png')
    rgba = np.dstack([img, np.full(img.shape[:2], 128, np.uint8)])
    gray = img[..., 0]  # the red channel as gray: the oracle only looks at red
    results = predict([rgba, gray, gray[..., None], tmp_path/'rgba.png', tmp_path/'deep16.png', pil], ORACLE)
    for r in results: assert iou(r.mask > 0, ref > 0) > 0.99, r
    assert predict(tmp_path/'gray.png', ORACLE).mask.shape == (150, 200)
    with pytest.raises(SkinsegError, match='expected a uint8'): predict(img.astype(np.float32), ORACLE)

def test_batching_and_order_do_not_change_masks():
    "Seven images in batches of 3 give the same masks, in the same order, as one at a time."
    imgs = [drawn_lesions(90 + 10 * i, 120, [(0.1 * i / 2, 0.2, 0.5 + 0.05 * i, 0.8)])[0] for i in range(7)]
    batched = predict(imgs, ORACLE, bs=3)
    for img, b in zip(imgs, batched): np.testing.assert_array_equal(predict(img, ORACLE).mask, b.mask)

def test_streams_give_the_same_results_in_the_same_order(tmp_path):
    "One, two or three batches at a time, a bad file among the images: the same masks and errors, in order."
    items = [drawn_lesions(90 + 10 * i, 120, [(0.05 * i, 0.2, 0.5 + 0.05 * i, 0.8)])[0] for i in range(9)]
    (tmp_path/'bad.jpg').write_text('no'); items.insert(4, tmp_path/'bad.jpg')
    runs = [list(iter_predict(items, ORACLE, bs=2, skip_errors=True, streams=s)) for s in (1, 2, 3)]
    for res in runs[1:]:
        assert [type(r).__name__ for r in res] == [type(r).__name__ for r in runs[0]]
        for a, b in zip(runs[0], res):
            if isinstance(a, SkinsegError): assert str(a) == str(b) and 'bad.jpg' in str(a)
            else: np.testing.assert_array_equal(a.mask, b.mask)
    assert len({r.mask.shape for r in runs[0] if not isinstance(r, SkinsegError)}) == 9

def test_streams_give_pytorch_its_threads_back(tmp_path):
    "After a run, one abandoned half-way, or one stopped by a bad file, PyTorch has as many threads as before."
    before = torch.get_num_threads()
    imgs = [drawn_lesions(60, 80, [(0.2, 0.2, 0.6, 0.7)])[0]] * 6
    predict(imgs, ORACLE, bs=1, streams=2)
    gen = iter_predict(imgs, ORACLE, bs=1, streams=3); next(gen); gen.close()
    (tmp_path/'bad.jpg').write_text('no')
    with pytest.raises(SkinsegError, match='bad.jpg'): predict(imgs + [tmp_path/'bad.jpg'] + imgs, ORACLE, bs=2, streams=2)
    assert torch.get_num_threads() == before

def test_a_model_folder_runs_as_one_folded_bf16_copy(tiny_model_dir, tiny_model):
    "predict folds a model it loads into a bfloat16 copy once; a (model, config) pair runs as it is; float32 is unchanged."
    img = drawn_lesions(60, 80, [(0.2, 0.2, 0.6, 0.7)])[0]
    np.testing.assert_array_equal(predict(img, tiny_model_dir, return_prob=True, bf16=False).prob,
                                  predict(img, tiny_model, return_prob=True, bf16=False).prob)
    assert inference_model(tiny_model_dir)[2] == bf16_supported()  # by default where the CPU runs bfloat16 natively; asked for, on any CPU:
    folded = predict(img, tiny_model_dir, return_prob=True, bf16=True)
    net, cfg = get_model(tiny_model_dir)
    copy, _, bf16 = inference_model(tiny_model_dir, bf16=True)
    assert bf16 and not any(isinstance(m, torch.nn.BatchNorm2d) for m in copy.modules())
    assert next(copy.parameters()).dtype == torch.bfloat16 and next(net.parameters()).dtype == torch.float32
    np.testing.assert_array_equal(folded.prob, predict(img, (copy, cfg), return_prob=True).prob)  # predict ran the copy
    predict(img, tiny_model_dir, bf16=True)
    assert inference_model(tiny_model_dir, bf16=True)[0] is copy  # made once per loaded model
    autocast = predict(img, tiny_model, return_prob=True, bf16=True)
    assert np.abs(folded.prob - autocast.prob).mean() < 0.01

def test_postprocess_keeps_largest_lesion_and_fills_holes():
    img, _ = drawn_lesions(150, 200, [(0.1, 0.1, 0.6, 0.8), (0.75, 0.1, 0.9, 0.3)])
    img = img.copy(); img[60:70, 60:70] = (220, 170, 150)  # a skin-coloured hole inside the big lesion
    raw = predict(img, ORACLE, postprocess=False).mask > 0
    post = predict(img, ORACLE, postprocess=True).mask > 0
    assert not raw[62:68, 62:68].any() and post[62:68, 62:68].all()   # the hole is filled
    assert raw[20:40, 155:175].any() and not post[:, 150:].any()       # the small lesion is dropped
    assert not keep_largest_lesion(np.zeros((4, 4), bool)).any()  # nothing found: nothing kept

def test_tta_of_a_flip_symmetric_model_changes_nothing():
    "A network that commutes with flips (a symmetric blur) gives the same probabilities with and without TTA."
    net = torch.nn.Conv2d(3, 2, 3, padding=1, bias=False)
    with torch.no_grad(): net.weight.copy_(torch.tensor([[1., 2, 1], [2, 4, 2], [1, 2, 1]]) * torch.randn(2, 3, 1, 1))
    img = np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    pair = (net, default_config(input_size=[32, 48]))
    a, b = (predict(img, pair, return_prob=True, tta=t).prob for t in (False, True))
    np.testing.assert_allclose(a, b, atol=1e-5)
    class Ramp(torch.nn.Module):  # lesion logit rising from -5 at the left edge to 5 at the right
        def forward(self, x): return torch.stack([torch.zeros_like(x[:, 0]), torch.linspace(-5, 5, x.shape[3]).expand_as(x[:, 0])], 1)
    ramp = (Ramp(), pair[1])
    p, p_tta = (predict(img, ramp, return_prob=True, tta=t).prob for t in (False, True))
    np.testing.assert_allclose(p_tta, (2 * p + p[:, ::-1]) / 3, atol=1e-5)  # the mirror image only via the horizontal flip

def test_huge_image_mask_at_full_size(tmp_path):
    "A 12000x9000 JPEG is predicted at full size, with the lesion where it was drawn."
    W, H = 12000, 9000
    img = Image.new('RGB', (W, H), (220, 170, 150))
    ImageDraw.Draw(img).ellipse([W // 4, H // 4, 3 * W // 4, 3 * H // 4], fill=(60, 30, 20))
    img.save(tmp_path/'huge photo.jpg', quality=70); del img
    r = predict(tmp_path/'huge photo.jpg', ORACLE, postprocess=True)
    assert r.mask.shape == (H, W)
    x0, y0, x1, y1 = r.bbox
    assert abs(x0 - W // 4) < 0.02 * W and abs(y1 - 3 * H // 4) < 0.02 * H
    assert 0.18 < r.area_fraction < 0.21  # an ellipse over half the width and height: pi/16 = 0.196

def test_full_size_in_blocks_matches_interpolate():
    "A 12-megapixel output is scaled up in blocks of rows (4 megapixels each): the same as one interpolation."
    p = torch.rand(24, 32)
    import torch.nn.functional as F
    mask, prob = prob_to_mask(p, (3000, 4000), with_prob=True)
    ref = F.interpolate(p[None, None], size=(3000, 4000), mode='bilinear', align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(prob, ref, atol=1e-5)
    assert ((mask > 0) != (ref > 0.5)).sum() <= 10

# ## The command

@pytest.fixture(scope='module')
def image_folder(tmp_path_factory):
    "Synthetic images in 'scans ä', one sub-folder image, a broken file, a grayscale and an RGBA file: (folder, good {stem: (h, w)})."
    data = make_dataset(tmp_path_factory.mktemp('data')/'set', n=4, size=(60, 80))
    folder = tmp_path_factory.mktemp('in')/'scans ä'
    folder.mkdir()
    good = {}
    for i, p in enumerate(sorted(q for q in data.rglob('*.jpg'))):
        Image.open(p).save(folder/f'img {i} é.jpg'); good[f'img {i} é'] = (60, 80)
    Image.open(p).convert('L').save(folder/'gray.png'); good['gray'] = (60, 80)
    Image.open(p).convert('RGBA').resize((90, 70)).save(folder/'rgba.png'); good['rgba'] = (70, 90)
    write_bad_images(folder/'broken', np.zeros((20, 20, 3), np.uint8))
    (folder/'broken'/'truncated.jpg').rename(folder/'truncated.jpg')
    (folder/'sub').mkdir(); Image.open(p).save(folder/'sub'/'deep.jpg')
    return folder, good

def test_command_writes_every_good_mask_and_lists_the_bad_file(tiny_model_dir, image_folder, tmp_path):
    folder, good = image_folder
    out = tmp_path/'masks ü'
    r = run_skinseg('predict', tiny_model_dir, folder, '--out', out)
    assert r.returncode == 1, r.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(f'{s}_segmentation.png' for s in good)
    for stem, shape in good.items():
        with Image.open(out/f'{stem}_segmentation.png') as m: assert m.mode == 'L' and m.size == shape[::-1]
        assert set(np.unique(read_mask(out/f'{stem}_segmentation.png'))) <= {0, 255}
    failed = [l for l in r.stderr.splitlines() if 'truncated.jpg' in l]
    assert len(failed) == 1 and 'truncated or corrupt' in failed[0], r.stderr
    assert '1 files failed' in r.stderr and 'deep.jpg' not in r.stdout + r.stderr

def test_command_recursive_and_all_good_exit_0(tiny_model_dir, image_folder, tmp_path):
    "--recursive takes sub-folders too (here the broken files); named good files alone exit 0."
    folder, good = image_folder
    r = run_inprocess('predict', tiny_model_dir, folder/'gray.png', folder/'sub', '--out', tmp_path/'o', '--quiet')
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path/'o').iterdir()) == ['deep_segmentation.png', 'gray_segmentation.png']
    r = run_inprocess('predict', tiny_model_dir, folder, '--out', tmp_path/'rec', '--recursive', '--quiet',
                      '--tta', 'true', '--postprocess', 'true', '--probs')
    assert r.returncode == 1
    names = {p.name for p in (tmp_path/'rec').iterdir()}
    assert 'deep_segmentation.png' in names and 'deep_prob.png' in names and 'empty.jpg' in r.stderr

def test_command_lists_a_mask_it_cannot_write_and_writes_the_others(tiny_model_dir, image_folder, tmp_path):
    folder, _ = image_folder
    out = tmp_path/'o'; (out/'gray_segmentation.png').mkdir(parents=True)  # a folder where one mask should go
    r = run_inprocess('predict', tiny_model_dir, folder/'gray.png', folder/'rgba.png', '--out', out, '--quiet')
    assert r.returncode == 1 and 'gray_segmentation.png' in r.stderr and '1 files failed' in r.stderr, r.stderr
    assert (out/'rgba_segmentation.png').is_file()

def test_command_missing_model_is_one_line_exit_2(image_folder, tmp_path):
    folder, _ = image_folder
    r = run_skinseg('predict', tmp_path/'no such model', folder, '--out', tmp_path/'o')
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"skinseg predict: error: {tmp_path/'no such model'}: no model folder here (train one with `skinseg train`)"]

def test_duplicate_image_ids_are_refused(tiny_model_dir, tmp_path):
    for d in 'ab':
        (tmp_path/d).mkdir(); Image.new('RGB', (30, 20)).save(tmp_path/d/'same.jpg')
    with pytest.raises(SkinsegError, match="'same'"):
        skinseg_predict(str(tiny_model_dir), [str(tmp_path/'a'), str(tmp_path/'b')], out=str(tmp_path/'o'), quiet=True)

def test_command_masks_are_predicts(tiny_model_dir, tmp_path):
    "`skinseg predict` runs a model folder exactly as `predict` does (float32, or the same bf16 copy where the CPU has bf16 or it is asked for), so their masks agree pixel for pixel."
    (tmp_path/'in').mkdir()
    for k, box in enumerate([(0.2, 0.2, 0.6, 0.7), (0.1, 0.3, 0.5, 0.9)]):
        Image.fromarray(drawn_lesions(90, 120, [box])[0]).save(tmp_path/'in'/f'lesion{k}.png')
    for bf16 in (None, True):  # the CPU's default, then bf16 on any CPU
        extra, out = (['--bf16', 'true'], tmp_path/'out_bf16') if bf16 else ([], tmp_path/'out')
        r = run_inprocess('predict', tiny_model_dir, tmp_path/'in', '--out', out, '--quiet', *extra)
        assert r.returncode == 0, r.stderr
        for k in range(2):
            np.testing.assert_array_equal(read_mask(out/f'lesion{k}_segmentation.png'),
                                          predict(tmp_path/'in'/f'lesion{k}.png', tiny_model_dir, bf16=bf16).mask)

def test_command_never_replaces_a_users_masks(tiny_model_dir, tmp_path):
    "`--out` holding the user's own ground-truth masks of the same names: refused in one line, every file kept byte for byte, nothing written."
    data = make_dataset(tmp_path/'data', n=4)
    truth = tmp_path/'data'/'truth'; truth.mkdir()
    for m in sorted((data/'masks').iterdir()): (truth/f'{m.stem}_segmentation.png').write_bytes(m.read_bytes())
    (truth/'SYNTH_0002_prob.png').write_bytes(b'my notes')  # not an image at all: still the user's
    before = {p.name: p.read_bytes() for p in truth.iterdir()}
    for extra in ([], ['--probs']):
        r = run_inprocess('predict', tiny_model_dir, data/'images', '--out', truth, '--quiet', *extra)
        n = 5 if extra else 4
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert f"{n} files in {truth} were not written by skinseg and are kept: SYNTH_0000_segmentation.png" in r.stderr
        assert 'choose another --out' in r.stderr and ('SYNTH_0002_prob.png' in r.stderr) == bool(extra)
        assert {p.name: p.read_bytes() for p in truth.iterdir()} == before
    r = run_inprocess('predict', tiny_model_dir, data/'images', '--out', truth, '--quiet', '--overwrite')  # asked for: replaced
    assert r.returncode == 0 and all(written_by_skinseg(truth/n) for n in before if n.endswith('_segmentation.png')), r.stderr

def test_command_runs_again_into_its_own_out(tiny_model_dir, tmp_path):
    "A second run into the same --out replaces skinseg's own masks and probability maps (even ones left by another run)."
    data = make_dataset(tmp_path/'data', n=3)
    out = tmp_path/'out'
    for _ in range(2):
        r = run_inprocess('predict', tiny_model_dir, data/'images', '--out', out, '--probs', '--quiet')
        assert r.returncode == 0, r.stderr
    from skinseg.basics import save_png, written_by_skinseg
    save_png(np.zeros((2, 2), np.uint8), out/'SYNTH_0001_segmentation.png')  # skinseg's, from some other run
    r = run_inprocess('predict', tiny_model_dir, data/'images', '--out', out, '--probs', '--quiet')
    assert r.returncode == 0, r.stderr
    assert len(list(out.iterdir())) == 6 and all(written_by_skinseg(p) for p in out.iterdir())
    assert read_mask(out/'SYNTH_0001_segmentation.png').shape == (48, 64)  # the image's size, not the 2x2 left there

def test_command_images_in_out_are_named(tiny_model_dir, tmp_path):
    "Images given as their own --out folder: the message says they were found, and why they are not inputs."
    data = make_dataset(tmp_path/'data', n=3)
    r = run_inprocess('predict', tiny_model_dir, data/'images', '--out', data/'images', '--quiet')
    assert r.returncode == 2 and 'no images found' not in r.stderr
    assert f"3 images found there are inside the --out folder {data/'images'}" in r.stderr, r.stderr

@pytest.mark.parametrize('flag', ['tta', 'postprocess', 'fov', 'bf16', 'return_prob', 'skip_errors'])
@pytest.mark.parametrize('value', ['false', 'true', 0, 1.0])
def test_on_off_options_must_be_bools(flag, value):
    "A string such as 'false' is truthy: every on/off option of `iter_predict` refuses anything but True, False or None."
    img = drawn_lesions(30, 40, [(0.2, 0.2, 0.6, 0.7)])[0]
    with pytest.raises(SkinsegError, match=f"{flag} must be True, False or None, got {value!r}"):
        list(iter_predict([img], ORACLE, **{flag: value}))

def test_empty_sizes_and_masks_are_refused_where_made():
    "`prob_to_mask` to an empty or odd size, or a `LesionMask` of an empty mask: one-line `SkinsegError`s, never ZeroDivisionError."
    from skinseg.core import LesionMask
    p = np.full((4, 4), 0.9, np.float32)
    for hw in [(0, 0), (5, 0), (-1, 3), (2.5, 3), (3,)]:
        with pytest.raises(SkinsegError, match='the size must be'): prob_to_mask(p, hw)
    assert prob_to_mask(p, (np.int64(3), 5))[0].shape == (3, 5)
    with pytest.raises(SkinsegError, match=r"img.jpg: a mask must be a non-empty HxW array, got shape \(0, 7\)"):
        LesionMask(np.zeros((0, 7), np.uint8), source='img.jpg')

def test_folding_a_model_while_another_runs():
    "torch.fx patches every module's call while it traces: a forward pass in another thread then failed ('module is not installed as a submodule')."
    import threading
    from skinseg.model import build_model, bf16_inference_model
    from skinseg.core import lesion_prob
    x = torch.randn(1, 3, 32, 32)
    running = bf16_inference_model(build_model('smp', 'resnet18', size=(32, 32)), x)
    other = build_model('smp', 'resnet18', size=(32, 32))
    errors, stop = [], threading.Event()
    def forward_passes():
        while not stop.is_set():
            try: lesion_prob(running, x)
            except Exception as e: errors.append(e); return
    t = threading.Thread(target=forward_passes); t.start()
    try: folded = [bf16_inference_model(other, x) for _ in range(5)]
    finally: stop.set(); t.join()
    assert errors == [] and all(f is not None for f in folded), errors[:1]
