"""One rule for reading a mask (nbs/api/01_images.ipynb), followed alike by check, train (`presize`) and evaluate."""
import numpy as np, pytest
from pathlib import Path
from PIL import Image
from skinseg.core import SkinsegError
from skinseg.data import find_pairs, presize, check_dataset
from conftest import make_dataset

VOC = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (252 * 3) + [224, 224, 192]

def _as_palette(path:Path, labels:np.ndarray):
    p = Image.fromarray(labels.astype(np.uint8), 'P'); p.putpalette(VOC); p.save(path)

@pytest.fixture
def palette_data(tmp_path) -> Path:
    "A synthetic dataset whose masks are rewritten as VOC palette PNGs (index 1 = lesion)."
    root = make_dataset(tmp_path/'data', n=4, size=(32, 40))
    for m in find_pairs(root)['mask']: _as_palette(Path(m), np.asarray(Image.open(m)) > 128)
    return root

def test_presize_reads_palette_masks(palette_data, tmp_path):
    "Case 01: training sees every lesion pixel of a palette mask (its index, not its grey value 38)."
    df = find_pairs(palette_data)
    true = sum(int((np.asarray(Image.open(m)) == 1).sum()) for m in df['mask'])
    _, masks = presize(df, (32, 40))
    assert true > 0 and int(masks.sum()) == true

def test_check_accepts_palette_masks(palette_data):
    "check follows the same rule: a palette mask with one lesion label is clean."
    assert check_dataset(palette_data) == []

@pytest.mark.parametrize('kind, words', [('void', "index 255 (VOC 'void'"), ('two labels', '2 non-zero labels'),
                                         ('two colours', 'colour mask with 2 colours'), ('soft', 'not a binary mask')])
def test_ambiguous_masks_refused_alike(tmp_path, kind, words):
    "An ambiguous mask is one problem line in check and a named error in presize, never a silent guess."
    root = make_dataset(tmp_path/'data', n=4, size=(32, 40))
    df = find_pairs(root); bad = Path(df['mask'][1])
    lesion = np.asarray(Image.open(bad)) > 128
    if kind in ('void', 'two labels'):
        idx = lesion.astype(np.uint8); idx[0, :] = 255 if kind == 'void' else 2; _as_palette(bad, idx)
    elif kind == 'two colours':
        rgb = np.zeros((*lesion.shape, 3), np.uint8); rgb[lesion] = (0, 200, 0); rgb[0, :5] = (200, 0, 0); Image.fromarray(rgb).save(bad)
    else: Image.fromarray(np.tile(np.linspace(0, 255, lesion.shape[1]).astype(np.uint8), (lesion.shape[0], 1))).save(bad)
    problems = check_dataset(root)
    assert len(problems) == 1 and problems[0].startswith(str(bad)) and words in problems[0], problems
    with pytest.raises(SkinsegError, match=words.replace('(', r'\(')) as e: presize(df, (32, 40))
    assert str(bad) in str(e.value)
