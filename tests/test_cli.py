"The `skinseg` console script, run as a user would run it."
import subprocess, sys
from pathlib import Path
import skinseg
from skinseg.cli import VERBS

SKINSEG = str(Path(sys.executable).with_name('skinseg'))

def run(*args):
    return subprocess.run([SKINSEG, *args], capture_output=True, text=True, timeout=300)

def test_help_lists_every_verb():
    r = run('--help')
    assert r.returncode == 0
    for verb in VERBS: assert f'  {verb} ' in r.stdout

def test_version():
    r = run('--version')
    assert r.returncode == 0 and r.stdout.strip() == f'skinseg {skinseg.__version__}'

def test_unknown_verb_fails():
    r = run('frobnicate')
    assert r.returncode == 2 and "unknown verb 'frobnicate'" in r.stderr

def test_a_file_it_cannot_write_is_one_line_not_a_traceback(tmp_path):
    "An OSError (here the scores CSV asked for under a file, not a folder) names the file in one line."
    import numpy as np
    from PIL import Image
    for d in ('gt', 'pred'):
        (tmp_path/d).mkdir(); Image.fromarray(np.full((8, 8), 255, np.uint8)).save(tmp_path/d/'a_segmentation.png')
    (tmp_path/'taken').write_text('a file, not a folder')
    r = run('evaluate', str(tmp_path/'gt'), str(tmp_path/'pred'), '--csv', str(tmp_path/'taken'/'scores.csv'), '--quiet')
    assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines() == [f"skinseg evaluate: error: {tmp_path/'taken'}: File exists"]
