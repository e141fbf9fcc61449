"Docs tooling: README.md made from nbs/index.ipynb, and docs/check_docs.py catching broken pages."
import os, subprocess, sys, time
from pathlib import Path
import nbformat, pytest
from nbformat.v4 import new_notebook, new_markdown_cell, new_code_cell, new_raw_cell, new_output
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'docs'))
import make_readme, check_docs

def test_readme_matches_index():
    assert (ROOT/'README.md').read_text() == make_readme.readme_text(), \
        "README.md is out of date with nbs/index.ipynb: run `.venv/bin/python docs/make_readme.py`"

def test_make_readme_conversion(tmp_path):
    (tmp_path/'docs'/'images').mkdir(parents=True)
    nb = new_notebook(cells=[
        new_markdown_cell("# demo\n\n> One line."),
        new_code_cell("#| hide\nsecret = 1"),
        new_code_cell("#| export\ndef f(): pass"),
        new_markdown_cell("See ![a picture](images/p.png) and the [core](00_core.ipynb#predict) notebook."),
        new_code_cell("#| eval: false\nprint('hi')", outputs=[new_output('stream', name='stdout', text='hi\n')]),
        new_code_cell("#| echo: false\n#| output: asis\nshow()",
                      outputs=[new_output('execute_result', data={'text/markdown': '**bold** output', 'text/plain': 'x'})]),
    ])
    nbformat.write(nb, tmp_path/'index.ipynb')
    md = make_readme.notebook_markdown(tmp_path/'index.ipynb', 'https://x.github.io/demo', root=tmp_path)
    assert md.startswith("# demo\n\n> One line.\n\n<!-- WARNING")
    assert 'secret' not in md and 'def f' not in md and '#|' not in md and 'show()' not in md
    assert '![a picture](docs/images/p.png)' in md                           # images: from the repository root
    assert '[core](https://x.github.io/demo/core.html#predict)' in md          # notebooks: the hosted page
    assert "```python\nprint('hi')\n```\n\n```\nhi\n```" in md
    assert '**bold** output' in md and '\nx\n' not in md                     # markdown output kept, as markdown

def _png(path, size=(40, 30)): Image.new('RGB', size, (200, 120, 90)).save(path)

def _show_doc(name, body): return new_output('execute_result', data={'text/markdown': f"---\n\n### {name}\n\n{body}"})

def _fake_site(d:Path):
    "Two processed notebooks: one fine, one with a traceback, broken images and empty/missing API sections."
    d.mkdir()
    _png(d/'ok.png')
    (d/'empty.png').write_bytes(b'')
    (d/'junk.png').write_bytes(b'this is not a PNG')
    good = new_notebook(cells=[
        new_raw_cell("---\ntitle: good\noutput-file: good.html\n---"),
        new_markdown_cell("Fine text and a picture: ![ok](ok.png), and a link to [the other page](bad.ipynb)."),
        new_markdown_cell("## f"),   # a prose heading named like the function is not its API section
        new_code_cell("#| echo: false\n#| output: asis\nshow_doc(f)",
                      outputs=[_show_doc('f', "```python\ndef f(x:int)\n```\n\n*Do f to `x`.*")]),
    ])
    tb = ['Traceback (most recent call last):', '  File "<cell>", line 1, in <module>', 'ValueError: planted']
    bad = new_notebook(cells=[
        new_raw_cell("---\ntitle: bad\noutput-file: bad.html\n---"),
        new_markdown_cell("![gone](missing.png) ![empty](empty.png) ![junk](junk.png) [nowhere](nowhere.ipynb)"),
        new_code_cell("1/0", outputs=[new_output('error', ename='ValueError', evalue='planted', traceback=tb)]),
        new_code_cell("#| echo: false\n#| output: asis\nshow_doc(g)", outputs=[_show_doc('g', '')]),
    ])
    nbformat.write(good, d/'good.ipynb'); nbformat.write(bad, d/'bad.ipynb')
    nbformat.write(new_notebook(cells=[new_markdown_cell("No title here.")]), d/'untitled.ipynb')

def test_notebook_problems_without_browser(tmp_path):
    _fake_site(tmp_path/'proc')
    assert check_docs.notebook_problems(tmp_path/'proc'/'good.ipynb', 'good.html') == []
    probs = check_docs.notebook_problems(tmp_path/'proc'/'bad.ipynb', 'bad.html')
    assert any('bad.html: cell 2 shows a Python error: ValueError: planted' in p for p in probs), probs

def test_cells_run_at_docs_time(tmp_path):
    nb = new_notebook(cells=[new_code_cell("import os"), new_code_cell("import os\nx = os.sep"),
                             new_code_cell("#| slow\nimport time\ntime.sleep(600)")])
    nbformat.write(nb, tmp_path/'n.ipynb')
    assert check_docs.executed_at_docs_time(tmp_path/'n.ipynb') == []   # no API docs on the page: nbdev runs nothing
    nb.cells.append(new_code_cell("#| export\nimport os\nX = 1"))
    nbformat.write(nb, tmp_path/'n.ipynb')
    found = check_docs.executed_at_docs_time(tmp_path/'n.ipynb')
    assert [(slow, m.split(' mixes')[0]) for slow, m in found] == [(False, 'n.ipynb: cell 1'), (True, 'n.ipynb: cell 2 (#| slow)')]
    nb.cells.insert(0, new_markdown_cell("# Heavy\n\n> Real runs only.\n\n- skip_showdoc: true"))  # nbdev runs none of it
    nbformat.write(nb, tmp_path/'n.ipynb')
    assert check_docs.executed_at_docs_time(tmp_path/'n.ipynb') == []

chrome = check_docs.find_chromium()
in_ci = os.environ.get('CI', '').lower() in ('1', 'true', 'yes')

@pytest.mark.skipif(chrome is None and not in_ci, reason="Chromium not installed (apt-get install chromium)")
def test_check_docs_catches_broken_pages(tmp_path):
    assert chrome, "Chromium is required in CI"
    _fake_site(tmp_path/'proc')
    probs = check_docs.check_docs(tmp_path/'proc', tmp_path/'out', api={'good.html': ['f'], 'bad.html': ['g', 'h']})
    assert not [p for p in probs if p.startswith('good.html')], probs          # the good page passes
    want = ['bad.html: image does not load: missing.png', 'bad.html: image does not load: empty.png',
            'bad.html: image does not load: junk.png', 'bad.html: an output shows a Python traceback',
            'bad.html: cell 2 shows a Python error', 'bad.html: API section `g` is empty',
            'bad.html: no API section (show_doc) for exported `h`', 'bad.html: link to a missing page or file: nowhere.ipynb',
            'untitled.html: no title']
    for w in want: assert any(p.startswith(w) for p in probs), (w, probs)
    assert len(probs) == len(want), probs
    assert Image.open(tmp_path/'out'/'home.png').size[0] == 1280               # a real screenshot of the first page

def test_browser_close_ends_its_helpers(tmp_path):
    "A helper process that outlives the browser and writes into its profile (Chromium's network service can) is ended."
    b = check_docs.Chromium.__new__(check_docs.Chromium)
    b.tmp = str(tmp_path/'profile')
    helper = f'while true; do mkdir -p "{b.tmp}/Default"; touch "{b.tmp}/Default/state"; sleep 0.05; done'
    b.proc = subprocess.Popen(['sh', '-c', f"sh -c '{helper}' & exit 0"], start_new_session=True)
    b.proc.wait()
    time.sleep(0.3)
    assert check_docs.process_group_alive(b.proc.pid)
    b.close(timeout=5)
    time.sleep(0.3)
    assert not os.path.exists(b.tmp) and not check_docs.process_group_alive(b.proc.pid)

def test_sidebar_order(tmp_path):
    for f in ['model_card.ipynb', '10_explore.ipynb', 'index.ipynb', '00_core.ipynb', 'nbdev.yml', 'styles.css', '_hidden.ipynb']:
        (tmp_path/f).touch()
    assert check_docs.expected_sidebar(tmp_path) == ['index.ipynb', '00_core.ipynb', '10_explore.ipynb', 'model_card.ipynb']
    for f in ['tutorials/02_b.ipynb', 'tutorials/01_a.ipynb', '.ipynb_checkpoints/x.ipynb', '_proc/y.ipynb']:
        (tmp_path/f).parent.mkdir(exist_ok=True); (tmp_path/f).touch()
    assert check_docs.expected_sidebar(tmp_path)[-3:] == ['model_card.ipynb', 'tutorials/01_a.ipynb', 'tutorials/02_b.ipynb']

def test_committed_sidebar_lists_every_notebook():
    "The hand-written sidebar (Tutorials / Explanations / API sections) lists every page once, index first."
    nbs = ROOT/'nbs'
    got, want = check_docs.read_sidebar(nbs/'sidebar.yml'), check_docs.expected_sidebar(nbs)
    assert sorted(got) == sorted(want) and got[0] == 'index.ipynb', f"nbs/sidebar.yml lists {got}; expected each of {want} once"
