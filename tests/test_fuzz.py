"Fuzzing the readers: random and mutated files either read as a valid array or raise `SkinsegError`, nothing else."
import io, json, warnings
from pathlib import Path
import numpy as np, pytest
from hypothesis import given, settings, strategies as st, HealthCheck
from PIL import Image

from skinseg.core import SkinsegError, read_image, read_mask, read_model_config, load_model, WEIGHTS_NAME, CONFIG_NAME

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

@pytest.fixture(scope='module')
def work(tmp_path_factory) -> Path:
    "One folder for the module: hypothesis cannot use the function-scoped `tmp_path`."
    return tmp_path_factory.mktemp('fuzz')

def _encode(a:np.ndarray, fmt:str, **kw) -> bytes:
    buf = io.BytesIO(); Image.fromarray(a).save(buf, format=fmt, **kw); return buf.getvalue()

def _seeds() -> dict:
    "Small valid files in the formats and modes a dermoscopy archive holds."
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8); gray = rgb[..., 0]
    mask = np.zeros((12, 16), np.uint8); mask[3:9, 4:12] = 255
    return {'rgb.png': _encode(rgb, 'PNG'), 'mask.png': _encode(mask, 'PNG'), 'rgb.jpg': _encode(rgb, 'JPEG'),
            'progressive.jpg': _encode(rgb, 'JPEG', progressive=True), 'gray.jpg': _encode(gray, 'JPEG'),
            'p.png': _encode(np.asarray(Image.fromarray(rgb).quantize(16)), 'PNG'),
            'g16.png': _encode(gray.astype(np.uint16) * 257, 'PNG'), 'rgba.png': _encode(np.dstack([rgb, gray]), 'PNG'),
            'rgb.bmp': _encode(rgb, 'BMP'), 'rgb.tif': _encode(rgb, 'TIFF'), 'rgb.gif': _encode(gray, 'GIF'),
            'rgb.webp': _encode(rgb, 'WEBP')}
SEEDS = _seeds()

@st.composite
def mutated(draw):
    "A valid seed file with a few bytes overwritten, inserted or deleted, or cut short."
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[name])
    for _ in range(draw(st.integers(1, 4))):  # mostly overwrites, which often still decode: both outcomes get tested
        op, pos = draw(st.sampled_from(['set'] * 4 + ['insert', 'delete', 'cut'])), draw(st.integers(0, len(data) - 1))
        if op == 'set': data[pos] = draw(st.integers(0, 255))
        elif op == 'insert': data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == 'delete': del data[pos:pos + draw(st.integers(1, 8))]
        else: data = data[:pos]
        if not data: break
    return name, bytes(data)

random_files = st.tuples(st.sampled_from(['x.jpg', 'x.png', 'x.tif', 'x']), st.binary(max_size=2048))

def _read_or_refuse(reader, folder:Path, name:str, data:bytes):
    "Write `data` to a file and read it: a valid uint8 array, or a `SkinsegError` naming the file."
    path = folder/name; path.write_bytes(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            a = reader(path)
    except SkinsegError as e:
        assert str(path) in str(e), str(e)
        return None
    assert isinstance(a, np.ndarray) and a.dtype == np.uint8 and a.size > 0
    assert a.ndim == (3 if reader is read_image else 2) and (a.ndim == 2 or a.shape[2] == 3), a.shape
    return a

@FUZZ
@given(st.one_of(mutated(), random_files))
def test_fuzz_read_image(work, item): _read_or_refuse(read_image, work, *item)

@FUZZ
@given(st.one_of(mutated(), random_files))
def test_fuzz_read_mask(work, item): _read_or_refuse(read_mask, work, *item)

def test_seeds_are_readable(work):
    "The unmutated seeds read fine, so the fuzzers start from real files."
    for name, data in SEEDS.items(): assert _read_or_refuse(read_image, work, name, data) is not None, name
    assert _read_or_refuse(read_mask, work, 'mask.png', SEEDS['mask.png']) is not None  # the others are photos, refused as masks

# ## Model folders: config.json and model.safetensors made of random or mutated bytes

GOOD_CONFIG = json.dumps({'format': 'skinseg-model', 'format_version': 1, 'arch': 'smp', 'input_size': [32, 32]}).encode()

def _mutate_bytes(draw, data:bytes) -> bytes:
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        if not data: break
        pos = draw(st.integers(0, len(data) - 1))
        if draw(st.booleans()): data[pos] = draw(st.integers(0, 255))
        else: data = data[:pos]
    return bytes(data)

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                           max_leaves=8)

@st.composite
def config_bytes(draw):
    kind = draw(st.sampled_from(['random', 'mutated', 'json']))
    if kind == 'random': return draw(st.binary(max_size=512))
    if kind == 'mutated': return _mutate_bytes(draw, GOOD_CONFIG)
    return json.dumps(draw(json_values)).encode()

@FUZZ
@given(config_bytes())
def test_fuzz_read_model_config(work, data):
    folder = work/'model'; folder.mkdir(exist_ok=True)
    (folder/CONFIG_NAME).write_bytes(data)
    try: cfg = read_model_config(folder)
    except SkinsegError as e: assert CONFIG_NAME in str(e) or str(folder) in str(e), str(e)
    else: assert cfg['format'] == 'skinseg-model'

def test_fuzz_load_model_weights(tiny_model_dir, tmp_path):
    "Random weights files, and a real one with its header's bytes overwritten, are refused by name or load."
    folder = tmp_path
    (folder/CONFIG_NAME).write_bytes((tiny_model_dir/CONFIG_NAME).read_bytes())
    real = (tiny_model_dir/WEIGHTS_NAME).read_bytes()
    head = real[:8 + int.from_bytes(real[:8], 'little')]  # length prefix + JSON header: names, dtypes, offsets

    @st.composite
    def weights(draw):
        if draw(st.booleans()): return draw(st.binary(max_size=1024))
        data = bytearray(head)  # overwritten in place, so the 100 MB file is not rewritten for every example
        for _ in range(draw(st.integers(1, 4))): data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)

    @settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(weights())
    def check(data):
        path = folder/WEIGHTS_NAME
        if len(data) == len(head):
            if not path.exists() or path.stat().st_size != len(real): path.write_bytes(real)
            with open(path, 'r+b') as f: f.write(data)
        else: path.write_bytes(data)
        try: load_model(folder)
        except SkinsegError as e: assert WEIGHTS_NAME in str(e) or CONFIG_NAME in str(e), str(e)
    check()

# ## predict decodes files its own way (reduced-size JPEG decoding): fuzz that path too

def test_fuzz_predict_path(tiny_model, tmp_path):
    "`predict` on a random or mutated file returns a mask of the file's size or raises `SkinsegError` naming it."
    from skinseg.core import predict
    OK = []

    @settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(st.one_of(mutated(), random_files))
    def check(item):
        name, data = item
        path = tmp_path/name; path.write_bytes(data)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                r = predict(path, tiny_model)
        except SkinsegError as e: assert str(path) in str(e) or path.name in str(e), str(e)
        else: assert r.mask.shape == read_image(path).shape[:2] and r.mask.dtype == np.uint8; OK.append(name)
    check()
    print(f'{len(OK)} fuzzed files were segmented')
