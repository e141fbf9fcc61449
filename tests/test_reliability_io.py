"Reliability of the image and mask readers (and the dataset checks): every odd file is read right or refused by name."
import struct, zlib, warnings
from pathlib import Path
import numpy as np
import pytest
from PIL import Image

from skinseg.core import SkinsegError, read_image, read_mask, binarize_mask
from skinseg.images import as_rgb_array
from conftest import write_bad_images, make_dataset, run_inprocess

def colour_blocks(h=48, w=64) -> np.ndarray:
    "An image of flat colour blocks, asymmetric so every flip and rotation is told apart, and JPEG-friendly."
    a = np.zeros((h, w, 3), np.uint8)
    a[:h//2, :w//2] = (230, 30, 30); a[:h//2, w//2:] = (30, 200, 40)
    a[h//2:, :w//2] = (20, 40, 220); a[h//2:, w//2:] = (240, 240, 50)
    a[:8, :8] = (255, 255, 255)  # the top-left corner is white
    return a

# ## Unreadable files are refused with the file's name and the problem

@pytest.mark.parametrize('reader', [read_image, read_mask])
def test_unreadable_files_name_file_and_problem(tmp_path, reader):
    expected = write_bad_images(tmp_path, colour_blocks())
    for name, problem in expected.items():
        with pytest.raises(SkinsegError) as e: reader(tmp_path/name)
        msg = str(e.value)
        assert str(tmp_path/name) in msg and problem in msg, msg
        assert len(msg) < 600 and '\n' not in msg.strip(), f"not one short line: {msg!r}"

@pytest.mark.parametrize('reader', [read_image, read_mask])
def test_a_directory_is_refused(tmp_path, reader):
    "A folder given where an image file is expected is named, not opened (a missing file: nbs/api/01_images.ipynb)."
    with pytest.raises(SkinsegError, match='directory') as e: reader(tmp_path)
    assert str(tmp_path) in str(e.value)

def test_png_cut_short_at_many_lengths(tmp_path):
    "A file cut anywhere is either refused by name or (if PIL pads it) read as a full-size array; never a raw error."
    src = tmp_path/'full.png'; Image.fromarray(colour_blocks()).save(src)
    data = src.read_bytes()
    for n in sorted({1, 7, 8, 16, 33, 50, len(data)//2, len(data) - 12, len(data) - 1}):
        cut = tmp_path/f'cut{n}.png'; cut.write_bytes(data[:n])
        try: a = read_image(cut)
        except SkinsegError as e: assert f'cut{n}.png' in str(e)
        else: assert a.shape == (48, 64, 3) and a.dtype == np.uint8

# ## Every colour mode and bit depth comes back as the right 8-bit RGB pixels

def test_grayscale_palette_rgba_bilevel_values(tmp_path):
    rgb = colour_blocks()
    gray = np.asarray(Image.fromarray(rgb).convert('L'))
    Image.fromarray(gray).save(tmp_path/'l.png')
    assert (read_image(tmp_path/'l.png') == gray[..., None]).all()
    Image.fromarray(rgb).quantize(8).save(tmp_path/'p.png')  # 5 colours: the palette is exact
    assert np.array_equal(read_image(tmp_path/'p.png'), rgb)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 77, np.uint8)])
    Image.fromarray(rgba).save(tmp_path/'rgba.png')
    assert np.array_equal(read_image(tmp_path/'rgba.png'), rgb)
    Image.fromarray(np.dstack([gray, gray])).save(tmp_path/'la.png')  # 2 channels: grey + alpha
    assert (read_image(tmp_path/'la.png') == gray[..., None]).all()
    Image.fromarray(gray > 128).save(tmp_path/'bilevel.png')
    assert set(np.unique(read_image(tmp_path/'bilevel.png'))) <= {0, 255}

def test_cmyk_jpeg_values(tmp_path):
    rgb = colour_blocks()
    Image.fromarray(rgb).convert('CMYK').save(tmp_path/'cmyk.jpg', quality=95)
    assert Image.open(tmp_path/'cmyk.jpg').mode == 'CMYK'
    got = read_image(tmp_path/'cmyk.jpg')
    assert got.shape == rgb.shape and got.dtype == np.uint8
    assert np.abs(got[12:-12, 12:-12].astype(int) - rgb[12:-12, 12:-12]).max() <= 12  # JPEG error only

def png_48bit(path:Path, rgb16:np.ndarray):
    "Write `rgb16` (HxWx3 uint16) as a 16-bit-per-channel RGB PNG, which PIL reads but cannot write."
    h, w, _ = rgb16.shape
    rows = b''.join(b'\x00' + r.astype('>u2').tobytes() for r in rgb16)  # filter type 0 before each row
    chunk = lambda kind, data: struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 16, 2, 0, 0, 0))
                     + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))

def test_48bit_rgb_png_values(tmp_path):
    "A 16-bit-per-channel RGB PNG reads as the right 8-bit pixels (16-bit grey: nbs/api/01_images.ipynb)."
    rgb16 = colour_blocks().astype(np.uint16) * 257 + 100
    png_48bit(tmp_path/'rgb16.png', rgb16)
    assert Image.open(tmp_path/'rgb16.png').size == (64, 48)
    got = read_image(tmp_path/'rgb16.png')
    assert got.dtype == np.uint8 and np.array_equal(got, rgb16 >> 8)  # the 16-bit rule: the high byte
    assert np.array_equal(got, as_rgb_array(rgb16))                   # as the array itself gives

@pytest.mark.parametrize('kind', ['gray8', 'rgb8', 'gray16', 'rgb16', 'gray16 small values'])
def test_file_and_array_give_the_same_pixels(tmp_path, kind):
    "One rule for images: `read_image(file)` equals `as_rgb_array(the array in it)`, 8- and 16-bit, grey and RGB."
    rng = np.random.default_rng(0)
    top = 256 if kind.endswith('8') or 'small' in kind else 65536
    a = rng.integers(0, top, (12, 16, 3) if 'rgb' in kind else (12, 16)).astype(np.uint8 if kind.endswith('8') else np.uint16)
    f = tmp_path/'x.png'
    if a.dtype == np.uint16 and a.ndim == 3: png_48bit(f, a)
    else: Image.fromarray(a).save(f)
    assert np.array_equal(read_image(f), as_rgb_array(a))
    assert np.array_equal(as_rgb_array(Image.open(f)), as_rgb_array(a))

def test_16bit_masks(tmp_path):
    m = np.zeros((20, 30), np.uint16); m[5:15, 10:25] = 65535
    Image.fromarray(m).save(tmp_path/'m16.png')
    got = read_mask(tmp_path/'m16.png')
    assert got.dtype == np.uint8 and set(np.unique(got)) == {0, 255}
    assert np.array_equal(binarize_mask(got), m > 0)
    Image.fromarray((m > 0).astype(np.uint16)).save(tmp_path/'m16_01.png')  # 0/1 stored in 16 bits
    assert np.array_equal(binarize_mask(read_mask(tmp_path/'m16_01.png')), m > 0)

def test_rgb_and_jpeg_masks(tmp_path):
    m = np.zeros((40, 50), np.uint8); m[10:30, 12:40] = 255
    Image.fromarray(np.dstack([m]*3)).save(tmp_path/'rgb_mask.png')
    assert np.array_equal(read_mask(tmp_path/'rgb_mask.png'), m)
    Image.fromarray(m).save(tmp_path/'mask.jpg', quality=75)  # JPEG noise around the border
    assert (binarize_mask(read_mask(tmp_path/'mask.jpg')) != (m > 0)).mean() < 0.02

# The eight EXIF orientations, by where the stored first row and column are shown (EXIF 2.3, tag 0x0112).
EXIF_ORIENT = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
               5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
               7: lambda a: a[::-1, ::-1].transpose(1, 0, 2), 8: lambda a: np.rot90(a, 1)}

@pytest.mark.parametrize('orientation', range(1, 9))
def test_exif_orientation(tmp_path, orientation):
    rgb = colour_blocks()
    exif = Image.Exif(); exif[0x0112] = orientation
    Image.fromarray(rgb).save(tmp_path/'o.jpg', exif=exif, quality=95)
    stored = np.asarray(Image.open(tmp_path/'o.jpg').convert('RGB'))  # decoded pixels, not yet turned
    assert np.array_equal(read_image(tmp_path/'o.jpg'), EXIF_ORIENT[orientation](stored))
    got = read_image(tmp_path/'o.jpg')
    corner = {1: (0, 0), 2: (0, -1), 3: (-1, -1), 4: (-1, 0), 5: (0, 0), 6: (0, -1), 7: (-1, -1), 8: (-1, 0)}[orientation]
    assert (got[corner] > 200).all(), "the white top-left corner is not where the display puts it"

def test_exif_orientation_applies_to_masks(tmp_path):
    m = np.zeros((20, 30), np.uint8); m[:5, :5] = 255
    exif = Image.Exif(); exif[0x0112] = 6
    Image.fromarray(m).save(tmp_path/'m.png', exif=exif)
    got = read_mask(tmp_path/'m.png')
    assert got.shape == (30, 20) and np.array_equal(got, np.rot90(m, -1))

# ## Paths with spaces and non-ASCII names

@pytest.mark.parametrize('name', ['with space/ima ge.jpg', 'dermatología/lésion_ü.jpg', '皮肤/病变 1.png', 'ça va/ß.JPG'])
def test_non_ascii_and_space_paths(tmp_path, name):
    p = tmp_path/name; p.parent.mkdir()
    Image.fromarray(colour_blocks()).save(p, format='PNG' if p.suffix == '.png' else 'JPEG')
    assert read_image(p).shape == (48, 64, 3)
    m = p.with_name(p.stem + '_segmentation' + p.suffix)
    Image.fromarray(np.kron(np.eye(2, dtype=np.uint8) * 255, np.ones((24, 32), np.uint8))).save(m, format='PNG' if p.suffix == '.png' else 'JPEG')
    assert read_mask(m).shape == (48, 64)
    p.with_name('empty' + p.suffix).write_bytes(b'')
    with pytest.raises(SkinsegError) as e: read_image(p.with_name('empty' + p.suffix))
    assert str(p.parent) in str(e.value)

# ## A huge image is not decoded into unbounded memory

def png_claiming_size(path:Path, width:int, height:int) -> bytes:
    "A valid small grayscale PNG whose header is rewritten (with a correct CRC) to claim `width` x `height`."
    Image.new('L', (8, 8)).save(path)
    data = bytearray(path.read_bytes())
    assert data[12:16] == b'IHDR'
    data[16:24] = struct.pack('>II', width, height)
    data[29:33] = struct.pack('>I', zlib.crc32(bytes(data[12:29])))
    return bytes(data)

def test_decompression_bomb_refused(tmp_path):
    "A small file that claims 40000x40000 pixels is refused by name, not decoded into gigabytes."
    (tmp_path/'bomb.png').write_bytes(png_claiming_size(tmp_path/'small.png', 40000, 40000))
    with pytest.raises(SkinsegError, match='too large') as e: read_image(tmp_path/'bomb.png')
    assert 'bomb.png' in str(e.value)

# ## The dataset checks: missing, misfit and many-valued masks (skinseg.data)

def dataset_with_problems(root:Path) -> tuple:
    """A synthetic dataset with one problem per pair: (root, {problem words: path that must be named}, good ids).
    `skinseg check` runs on it in test_reliability_cli; `check_dataset` on planted problems: nbs/api/07_data.ipynb."""
    from skinseg.data import find_pairs
    root = make_dataset(root, n=8)
    df = find_pairs(root)
    img, mask = [Path(p) for p in df.image], [Path(p) for p in df['mask']]
    mask[0].unlink()                                                                   # missing mask
    Image.new('L', (10, 10)).save(mask[1])                                             # wrong size
    three = np.zeros(read_mask(mask[2]).shape, np.uint8); three[:5] = 128; three[-5:] = 255
    Image.fromarray(three).save(mask[2])                                               # three values
    img[3].write_bytes(b'')                                                            # empty image
    img[4].write_bytes(img[5].read_bytes()[:300])                                      # truncated image
    img[5].with_name('notes.jpg').write_text('a text file named .jpg')                 # not an image, no mask
    problems = {'no mask': img[0], '10x10': mask[1], '3 values': mask[2], 'empty': img[3], 'truncated': img[4],
                'not an image': img[5].with_name('notes.jpg')}
    return root, problems, list(df.image_id[5:])

@pytest.mark.parametrize('reader', ['check_dataset', 'find_pairs'])
def test_images_folder_without_images(tmp_path, reader):
    "An images/ folder with no image in it is refused (an empty or missing folder: nbs/api/05_layouts.ipynb)."
    import skinseg.data; read = getattr(skinseg.data, reader)
    (tmp_path/'empty'/'images').mkdir(parents=True)
    with pytest.raises(SkinsegError, match='no images') as e: read(tmp_path/'empty')
    assert str(tmp_path/'empty') in str(e.value)

def _split(df):
    from skinseg.data import split_pairs
    return split_pairs(df, valid_pct=0.25, seed=0)

@pytest.mark.parametrize('problem', ['truncated image', 'text image', 'missing mask', 'empty mask'])  # empty image: the notebook
def test_dataloader_refuses_bad_pair_by_name(tmp_path, problem):
    "Building the training data from a broken pair fails with the broken file's name, before any training."
    from skinseg.data import find_pairs
    from skinseg.loaders import seg_dataloaders
    root = make_dataset(tmp_path/'data', n=6, size=(32, 40))
    df = find_pairs(root)
    bad = Path(df['mask'][2] if 'mask' in problem else df.image[2])
    if problem == 'missing mask': bad.unlink(); bad = Path(df.image[2])
    elif problem.startswith('empty'): bad.write_bytes(b'')
    elif problem == 'truncated image': bad.write_bytes(bad.read_bytes()[:200])
    else: bad.write_text('hello')
    with pytest.raises(SkinsegError) as e:
        dls = seg_dataloaders(_split(find_pairs(root)), size=(32, 32), bs=2)
        for _ in dls.train: pass
    assert str(bad) in str(e.value) or bad.name in str(e.value), str(e.value)

# ## Files are closed, folders named rightly

def corrupt_jpegs(folder:Path) -> list:
    "JPEGs whose header reads but whose data does not: cut short, and followed by garbage."
    folder.mkdir(parents=True, exist_ok=True)
    buf = folder/'_good.jpg'; Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 300, 3), np.uint8)).save(buf)
    jpeg = buf.read_bytes(); buf.unlink()
    (folder/'cut.jpg').write_bytes(jpeg[:len(jpeg)//3])
    (folder/'garbage.jpg').write_bytes(jpeg[:600] + bytes(range(256)) * 20)
    return [folder/'cut.jpg', folder/'garbage.jpg']

def test_a_corrupt_image_leaves_no_file_open(tmp_path):
    "Reading, sizing and checking a corrupt JPEG refuses it by name and closes it: no `ResourceWarning: unclosed file`."
    import gc, warnings
    from skinseg.images import display_hw, open_image
    from skinseg.data import check_dataset
    files = corrupt_jpegs(tmp_path/'bad')
    root = make_dataset(tmp_path/'data', n=4)
    (root/'images'/'SYNTH_0001.jpg').write_bytes(files[1].read_bytes())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always', ResourceWarning)
        for f in files:
            for read in (read_image, read_mask, lambda p: open_image(p, draft=(64, 48))):
                with pytest.raises(SkinsegError, match=f.name): read(f)
            display_hw(f)  # the header alone is fine
        assert any('SYNTH_0001.jpg' in p for p in check_dataset(root, workers=2))
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []

def test_check_names_a_file_and_a_masks_folder_alone(tmp_path):
    "`skinseg check FILE` says it is a file; a folder with masks/ but no images says the images are missing, not to rename masks/."
    from conftest import run_inprocess
    root = make_dataset(tmp_path/'data', n=4)
    r = run_inprocess('check', root/'metadata.csv', '--quiet')
    assert r.returncode == 2 and r.stderr.strip() == f"skinseg check: error: {root/'metadata.csv'}: is a file, not a folder: give the dataset folder that holds the images", r.stderr
    (root/'images').rename(tmp_path/'elsewhere')
    r = run_inprocess('check', root, '--quiet')
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert r.stderr.strip().endswith('found masks/ but no images/ folder beside it: put the images in images/'), r.stderr

def test_12bit_data_in_a_16bit_png_is_warned_of(tmp_path):
    "12-bit camera data stored unscaled in a 16-bit PNG reads nearly black: one warning names the file; full-range 16-bit data none."
    rgb12 = (colour_blocks().astype(np.uint16) * 16)  # 0..4080: the low 12 bits only
    png_48bit(tmp_path/'rgb12.png', rgb12)
    with pytest.warns(UserWarning, match=r"rgb12\.png: a 16-bit image whose values all stay below 4096") as got:
        assert read_image(tmp_path/'rgb12.png').max() < 16
    assert len(got) == 1
    with pytest.warns(UserWarning, match='below 4096'): as_rgb_array(rgb12)
    png_48bit(tmp_path/'rgb16.png', rgb12 * 16)  # the same image scaled to 16 bits
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert read_image(tmp_path/'rgb16.png').max() > 200

def test_predict_names_a_12bit_image(tmp_path, tiny_model_dir):
    "`skinseg predict` on 12-bit data in a 16-bit PNG prints one warning line naming the file, and still writes its mask."
    png_48bit(tmp_path/'dark12.png', colour_blocks().astype(np.uint16) * 16)
    r = run_inprocess("predict", tiny_model_dir, tmp_path/'dark12.png', '--out', tmp_path/'masks')
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stderr.splitlines() if 'dark12.png' in l]
    assert len(lines) == 1 and 'warning' in lines[0] and 'below 4096' in lines[0], r.stderr
    assert (tmp_path/'masks'/'dark12_segmentation.png').is_file()
