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
