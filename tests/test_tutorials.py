"""The tutorials, `nbs/tutorials/*.ipynb`, run top to bottom in a real Jupyter kernel, as JupyterLab runs them.

Each notebook runs with nbclient in a fresh ipykernel process, in file-name order, with `SKINSEG_QUICK=1`, its
working directory being its own folder; the outputs are discarded (the committed notebooks never change). Two passes:

* `data`: in `nbs/tutorials/` itself, where the tutorials find the shared data (`../shared/data` above the
  repository, or `$SKINSEG_DATA`); skipped, with the reason, where there is none.
* `nodata`: in `tutorials/` of a temporary copy of `nbs/`, with no `shared/data` above it and `$SKINSEG_DATA` an
  empty folder, so the tutorials fall back to synthetic data; `PYTHONPATH` points at this repository.

The two passes run at the same time, each in its own thread (each notebook in order within its pass, each kernel
with one PyTorch thread, so two kernels share two cores without waiting on each other's threads); each test waits
for its notebook's result. A failing cell fails its test with the notebook, the cell and the error; the run times
are printed at the end.
Files the tutorials write into `nbs/tutorials/` are removed after the data pass (and listed). Jupyter's and
IPython's own folders (runtime, config, data, profile) are temporary ones, removed afterwards.

    pytest tests/test_tutorials.py                      # both passes (part of `make pytest`)
    pytest tests/test_tutorials.py -k nodata            # one pass
    pytest tests/test_tutorials.py -k 01_explore        # one notebook
"""
import hashlib, os, re, shutil, tempfile, threading, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT/'nbs'/'tutorials'
# As nbdev does: names starting with `_` or `.` are not notebooks to run.
NOTEBOOKS = sorted(p for p in TUTORIALS.glob('*.ipynb') if not p.name.startswith(('_', '.')))
CELL_TIMEOUT = int(os.environ.get('SKINSEG_TUTORIAL_CELL_TIMEOUT', 900))  # seconds per cell, as nbdev's cell_timeout
ANSI_RE = re.compile(r'\x1b\[[0-9;]*[A-Za-z]')

def shared_data_above(folder:Path):
    "The first `shared/data` folder in `folder` or above it (where `skinseg.core.find_data_dir` looks), or None."
    folder = Path(folder).resolve()
    return next((p/'shared'/'data' for p in [folder, *folder.parents] if (p/'shared'/'data').is_dir()), None)

def _cell_label(nb, i:int) -> str:
    code = [j for j, c in enumerate(nb.cells) if c.cell_type == 'code']
    first = next((l.strip() for l in nb.cells[i].source.splitlines() if l.strip() and not l.startswith('#|')), '')
    return f"cell {i} (code cell {code.index(i)+1} of {len(code)}: {first[:60]!r})"

def run_notebook(path:Path, cwd:Path, env:dict, timeout:int=CELL_TIMEOUT) -> float:
    "Run the notebook at `path` in a new kernel started in `cwd` with environment `env`; its run time in seconds."
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, resources={'metadata': {'path': str(cwd)}}, record_timing=True)
    t0, error = time.time(), None
    try: client.execute(env=env)
    except (CellExecutionError, CellTimeoutError, DeadKernelError, RuntimeError) as e: error = e
    secs = time.time() - t0
    if error is not None:
        # The failing cell: the one with an error output, else (timeout, dead kernel) the last one started.
        failed = next((i for i, c in enumerate(nb.cells)
                       if any(o.get('output_type') == 'error' for o in c.get('outputs', []))), None)
        if failed is None:
            failed = next((i for i in reversed(range(len(nb.cells)))
                           if nb.cells[i].get('metadata', {}).get('execution')), None)
        err = next((o for o in nb.cells[failed].get('outputs', []) if o.get('output_type') == 'error'), None) \
              if failed is not None else None
        if err: why = ANSI_RE.sub('', '\n'.join(err.get('traceback', [])[-12:])).strip() or f"{err['ename']}: {err['evalue']}"
        else: why = f"{type(error).__name__}: {ANSI_RE.sub('', str(error)).strip()[-2000:]}"
        if isinstance(error, CellTimeoutError):
            why = f"the cell ran past the {timeout} s limit ($SKINSEG_TUTORIAL_CELL_TIMEOUT) and was interrupted:\n{why}"
        where = _cell_label(nb, failed) if failed is not None else 'before the first cell (kernel start)'
        pytest.fail(f"{path.name}: {where} failed after {secs:.0f} s:\n{why}", pytrace=False)
    return secs

def _digest(folder:Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob('*.ipynb'))}

def _times(config) -> list:
    if not hasattr(config, 'skinseg_tutorial_times'): config.skinseg_tutorial_times = []
    return config.skinseg_tutorial_times

@pytest.fixture(scope='module')
def jupyter_env():
    "Temporary Jupyter/IPython folders for this process and the kernels; removed, with what was written there, at the end."
    home = Path(tempfile.mkdtemp(prefix='skinseg-tutorials-'))
    dirs = {k: home/k.lower() for k in ('JUPYTER_RUNTIME_DIR', 'JUPYTER_CONFIG_DIR', 'JUPYTER_DATA_DIR', 'IPYTHONDIR')}
    for d in dirs.values(): d.mkdir()
    saved = {k: os.environ.get(k) for k in dirs}
    os.environ.update({k: str(v) for k, v in dirs.items()})
    pythonpath = os.pathsep.join([str(ROOT)] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p])
    env = {**os.environ, 'SKINSEG_QUICK': '1', 'PYTHONPATH': pythonpath, 'PYDEVD_DISABLE_FILE_VALIDATION': '1',
           'OMP_NUM_THREADS': '1'}  # two kernels at once on two cores
    try: yield home, env
    finally:
        for k, v in saved.items():
            if v is None: os.environ.pop(k, None)
            else: os.environ[k] = v
        shutil.rmtree(home, ignore_errors=True)

@pytest.fixture(scope='module')
def data_pass(jupyter_env, request):
    "The data pass: the tutorials in place; what they write into nbs/tutorials/ is removed afterwards."
    home, env = jupyter_env
    if not (env.get('SKINSEG_DATA') or shared_data_above(TUTORIALS)):
        pytest.skip(f"no shared data ($SKINSEG_DATA unset, no shared/data above {TUTORIALS}): only the no-data pass runs")
    before, digests = set(TUTORIALS.rglob('*')), _digest(TUTORIALS)
    yield TUTORIALS, env
    new = sorted(set(TUTORIALS.rglob('*')) - before, key=lambda p: len(p.parts), reverse=True)
    for p in new:
        if p.is_dir() and not p.is_symlink(): shutil.rmtree(p, ignore_errors=True)
        else: p.unlink(missing_ok=True)
    tops = sorted({p.relative_to(TUTORIALS).parts[0] for p in new})
    if tops: _times(request.config).append(f"note: the tutorials wrote into nbs/tutorials/ (removed): {', '.join(tops)}")
    assert _digest(TUTORIALS) == digests, "running the tutorials changed the committed notebooks in nbs/tutorials/"

@pytest.fixture(scope='module')
def nodata_pass(jupyter_env):
    "The no-data pass: a copy of nbs/tutorials/ with no shared/data above it and $SKINSEG_DATA an empty folder."
    home, env = jupyter_env
    shutil.copytree(ROOT/'nbs', home/'repo'/'nbs', ignore=shutil.ignore_patterns('.ipynb_checkpoints', '_proc', '_docs'))
    copy = home/'repo'/'nbs'/'tutorials'  # all of nbs/ (2 MB): links and files relative to the tutorials work
    found = shared_data_above(copy)
    assert found is None, f"the no-data copy {copy} has shared data above it ({found}): set TMPDIR to a folder outside it"
    (home/'no-data').mkdir()
    yield copy, {**env, 'SKINSEG_DATA': str(home/'no-data')}

def test_tutorials_present():
    "Fails loudly, not a silent skip, while nbs/tutorials/ has no notebooks."
    assert NOTEBOOKS, (f"no tutorial notebooks in {TUTORIALS}: put 01_explore.ipynb ... 05_use.ipynb there "
                       "(tests/test_tutorials.py runs every *.ipynb in it)")

class PassRunner:
    "Runs one pass's notebooks in order in a background thread; `result(name)` waits for one and returns its seconds."
    def __init__(self, folder:Path, env:dict, notebooks:list):
        self.folder, self.env, self.notebooks, self.results = folder, env, notebooks, {}
        self.done = {nb.name: threading.Event() for nb in notebooks}
        threading.Thread(target=self._run, daemon=True).start()
    def _run(self):
        for nb in self.notebooks:
            try: self.results[nb.name] = (True, run_notebook(self.folder/nb.name, self.folder, self.env))
            except BaseException as e: self.results[nb.name] = (False, e)  # pytest.fail's exception, re-raised in the test
            finally: self.done[nb.name].set()
    def result(self, name:str) -> float:
        self.done[name].wait()
        ok, v = self.results[name]
        if not ok: raise v
        return v

@pytest.fixture(scope='module')
def runners(request):
    """Both passes, started together at the first tutorial test: {mode: PassRunner, or the reason it was skipped}.
    A pass runs its notebooks up to the last one selected (`-k`), in order, since later ones may use earlier ones' output."""
    chosen = [i.callspec.params for i in request.session.items if i.originalname == 'test_tutorial']
    found = {}
    for mode in ('data', 'nodata'):
        last = max((NOTEBOOKS.index(c['nb']) for c in chosen if c['mode'] == mode), default=None)
        if last is None: continue
        try: found[mode] = PassRunner(*request.getfixturevalue(f'{mode}_pass'), NOTEBOOKS[:last + 1])
        except pytest.skip.Exception as e: found[mode] = str(e)
    yield found
    for r in found.values():  # a pass still running (a test was deselected or stopped) finishes before teardown
        if isinstance(r, PassRunner):
            for ev in r.done.values(): ev.wait()

@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
@pytest.mark.parametrize('mode', ['data', 'nodata'])
def test_tutorial(mode, nb, runners, request):
    runner = runners[mode]
    if isinstance(runner, str): pytest.skip(runner)
    secs = runner.result(nb.name)
    _times(request.config).append(f"{nb.name} [{mode}]: {secs:.1f} s")

def test_nbdev_test_skips_tutorials():
    "`nbdev-test` (make nbtest) leaves the tutorials to this module: it skips a notebook with a sibling named its `ignore_fname`."
    import inspect, nbdev.test
    ignore = inspect.signature(nbdev.test.nbdev_test).parameters['ignore_fname'].default
    assert (TUTORIALS/ignore).exists(), f"nbs/tutorials/{ignore} is missing: nbdev-test would run the tutorials too"
    others = [f for f in (ROOT/'nbs').rglob('*.ipynb') if TUTORIALS not in f.parents and '.ipynb_checkpoints' not in f.parts]
    assert others and not [f for f in others if (f.parent/ignore).exists()], f"a {ignore} outside nbs/tutorials: nbdev-test would skip those notebooks"
