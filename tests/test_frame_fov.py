"""Case 18: a contact dermoscope's black round frame is never marked as lesion (field_of_view and predict's fov: the
contract and the before/after table on real images are in nbs/api/03_core.ipynb). Synthetic frames here; the real
HAM10000 check runs where the data and a trained model (demo_out/model or $SKINSEG_CASE_MODEL) are present."""
import os
from pathlib import Path
import numpy as np, pandas as pd, pytest
from skinseg.core import predict, field_of_view, read_image, find_data_dir
from test_predict import ORACLE, drawn_lesions

def with_frame(img, scale=0.55):
    "`img` with the corners outside an ellipse set to pure black, and that frame's mask."
    img = img.copy(); h, w = img.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    frame = ((yy - h/2) / (scale*h))**2 + ((xx - w/2) / (scale*w))**2 > 1
    img[frame] = 0
    return img, frame

@pytest.mark.parametrize('hw', [(450, 600), (150, 200), (1000, 750)])
def test_black_frame_is_not_lesion(hw):
    "The oracle calls every dark pixel lesion: with fov off it marks the frame, by default it does not; the lesion stays."
    img, truth = drawn_lesions(*hw, [(0.35, 0.3, 0.65, 0.7)])
    img, frame = with_frame(img)
    assert (predict(img, ORACLE, fov=False).mask[frame] > 0).mean() > 0.95
    r = predict(img, ORACLE)
    assert (r.mask[frame] > 0).mean() < 0.005
    assert ((r.mask > 0) & truth).sum() / truth.sum() > 0.95

def test_no_frame_changes_nothing():
    "Without a frame, fov on and off give the same mask, a dark lesion at the edge included."
    img = drawn_lesions(150, 200, [(-0.1, 0.3, 0.2, 0.7), (0.5, 0.4, 0.8, 0.8)])[0].copy()
    img[np.asarray(drawn_lesions(150, 200, [(-0.1, 0.3, 0.2, 0.7)])[1])] = (10, 6, 5)  # near-black, touching the edge
    np.testing.assert_array_equal(predict(img, ORACLE).mask, predict(img, ORACLE, fov=False).mask)
    assert field_of_view(img).all()

def test_dark_lesion_at_the_edge_of_a_framed_image_stays():
    img, truth = drawn_lesions(450, 600, [(-0.1, 0.4, 0.15, 0.6)])
    img = img.copy(); img[truth] = (10, 6, 5)
    img, frame = with_frame(img)
    r = predict(img, ORACLE)
    assert ((r.mask > 0) & truth & ~frame).sum() / (truth & ~frame).sum() > 0.9

def test_real_validation_images_with_a_black_frame():
    "At most 10% of the frame of any of 20 real validation images is marked (case 18's check)."
    model = Path(os.environ.get('SKINSEG_CASE_MODEL', Path(__file__).parents[1]/'demo_out'/'model'))
    data = find_data_dir()
    if data is None or not (model/'config.json').is_file(): pytest.skip('needs HAM10000 and a trained model (make demo)')
    from skinseg.data import find_pairs
    split, pairs = pd.read_csv(model/'split.csv'), find_pairs(data).set_index('image_id')
    for i in [i for i in split.image_id[split.is_valid] if i in pairs.index][:20]:
        img, frame = with_frame(read_image(pairs.image[i]))
        assert (predict(img, model).mask[frame] > 0).mean() <= 0.10, i
