#!/usr/bin/env python
"""Check the documentation site locally: everything short of the Quarto render.

`nbdev-proc-nbs` processes the notebooks exactly as `nbdev-docs` does before Quarto (it adds a `show_doc` cell
after every exported function and drops hidden cells); every processed notebook is then rendered to a standalone
HTML page in `docs_check/` with nbconvert, served on 127.0.0.1, and opened in headless Chromium. The check fails,
one line per problem naming the page, when a page shows a Python traceback, an image does not load, an exported
function has no API section (or an empty one), a placeholder is left in the text, or the notebooks cannot be
processed. The home page's screenshot goes to `docs_check/home.png`.

    python docs/check_docs.py                      # the whole site (what `make docs-check` runs)
    python docs/check_docs.py --proc_dir DIR       # pages from already processed notebooks (used by the tests)

Without Chromium the browser part is skipped with a message, unless CI=true, where that is a failure.
"""
import ast, base64, functools, http.server, json, os, re, shlex, shutil, signal, subprocess, sys, tempfile, threading, time
from pathlib import Path
from make_readme import directives  # docs/ is on sys.path when this script runs

ROOT = Path(__file__).resolve().parents[1]
NB_FILE_RE = r'\.(?:ipynb|qmd|html)$'  # the pages `nbdev-docs` lists in the sidebar (nbdev-proc-nbs alone lists every file)
CHROME_NAMES = ('chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable')
# Without the background-networking flags Chromium's own connections get refused in sandboxed CI machines.
CHROME_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                '--disable-background-networking', '--disable-component-update', '--disable-sync',
                '--disable-dev-shm-usage', '--hide-scrollbars', '--mute-audio', '--window-size=1280,1000']
PLACEHOLDER_RE = re.compile(r'\b(?:TODO|TBD|FIXME|XXX)\b|\?\?\?|<fill[^>]*>|\{\{[^}]*\}\}')
TRACEBACK_RE = re.compile(r'Traceback \(most recent call last\)|^\w*(?:Error|Exception)\s+Traceback', re.M)

# ---------------------------------------------------------------------------------------------- processing

def _runs(exe:str) -> bool:
    "Whether `exe --version` works (Ubuntu's `chromium-browser` can be a wrapper for a snap that is not installed)."
    try: return subprocess.run([exe, '--version'], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired): return False

def find_chromium():
    "Path of a working Chromium/Chrome: `$CHROME`, else the first of `CHROME_NAMES` on the PATH that runs."
    if os.environ.get('CHROME'): return os.environ['CHROME']
    return next((p for p in map(shutil.which, CHROME_NAMES) if p and _runs(p)), None)

def read_sidebar(path:Path) -> list:
    "The page files listed in a Quarto `sidebar.yml`, in order."
    import yaml
    if not path.exists(): return []
    def walk(items):
        for o in items:
            if isinstance(o, str): yield o
            elif isinstance(o, dict):
                if 'href' in o: yield o['href']
                yield from walk(o.get('contents', []))
    return list(walk(yaml.safe_load(path.read_text())['website']['sidebar']['contents']))

def expected_sidebar(nbs:Path) -> list:
    "Every page under `nbs` (not `_` or `.` files or folders), as paths relative to it: index first, then by path."
    pages = sorted(p.relative_to(nbs).as_posix() for p in nbs.rglob('*') if re.search(NB_FILE_RE, p.name)
                   and not any(part[0] in '_.' for part in p.relative_to(nbs).parts))
    return sorted(pages, key=lambda n: (n != 'index.ipynb', n))

def _code_only(src:str) -> str:
    "Cell source without IPython magics and shell escapes, so that `ast` can parse it."
    return '\n'.join('' if re.match(r'\s*[%!]', l) else l for l in src.splitlines())

def executed_at_docs_time(nb_path:Path) -> list:
    "Cells that nbdev runs while building the docs although they do more than import (nbdev FAQ): (is_slow, message)."
    from fastcore.nbio import read_nb, nb_frontmatter
    from fastcore.utils import str2bool
    if str2bool(nb_frontmatter(read_nb(nb_path)).get('skip_showdoc', False)): return []  # nbdev runs none of its cells
    nb, res = json.loads(nb_path.read_text()), []
    codes = [''.join(c.get('source', '')) for c in nb['cells'] if c['cell_type'] == 'code']
    documented = lambda d: {'export', 'exports', 'exec_doc'} & d.keys() and 'hide' not in d and d.get('include') != 'false'
    if not any(documented(directives(c)) or re.search(r'^show_doc\(', c, re.M) for c in codes):
        return []  # no API docs on this page, so nbdev executes nothing in it
    for i, cell in enumerate(nb['cells']):
        src = ''.join(cell.get('source', ''))
        if cell['cell_type'] != 'code': continue
        d = directives(src)
        if d.get('eval', '').lower() == 'false' or {'export', 'exports', 'exporti', 'exec_doc'} & d.keys(): continue
        try: tree = ast.parse(_code_only(src))
        except SyntaxError: continue
        if not any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(tree)): continue
        others = [n for n in tree.body if not isinstance(n, (ast.Import, ast.ImportFrom))]
        if others:
            slow = 'slow' in d
            res.append((slow, f"{nb_path.name}: cell {i}{' (#| slow)' if slow else ''} mixes imports with other code, "
                        f"so nbdev-proc-nbs and nbdev-docs run it (line {others[0].lineno}: "
                        f"{src.splitlines()[others[0].lineno-1].strip()[:50]!r}); put its imports in a cell of their own"))
    return res

def run_nbdev_proc(root:Path=ROOT) -> list:
    "Run `nbdev-proc-nbs` on the project; problems with the notebooks or the generated sidebar."
    nbs, problems = root/'nbs', []
    for nb in sorted(nbs.rglob('*.ipynb')):
        if any(part[0] in '_.' for part in nb.relative_to(nbs).parts): continue
        found = executed_at_docs_time(nb)
        problems += [msg for slow, msg in found if slow]  # minutes of real work on every docs build
        cells = [re.search(r'cell (\d+)', msg).group(1) for slow, msg in found if not slow]
        if cells: print(f"docs-check: warning: {nb.name}: cells {', '.join(cells)} mix imports with other code, so nbdev "
                        "runs them while building the docs (nbdev FAQ); put their imports in cells of their own", file=sys.stderr)
    sidebar = nbs/'sidebar.yml'
    before = sidebar.read_text() if sidebar.exists() else None
    exe = Path(sys.executable).parent/'nbdev-proc-nbs'
    res = subprocess.run([str(exe) if exe.exists() else 'nbdev-proc-nbs', '--file-re', NB_FILE_RE],
                         cwd=root, capture_output=True, text=True)
    if res.returncode:
        lines = (res.stderr or res.stdout).strip().splitlines() or ['(no output)']
        where = next((l for l in lines if 'Error in notebook' in l), '').strip(' :')
        problems.append(f"nbdev-proc-nbs failed: {where + ': ' if where else ''}{lines[-1]}")
        return problems
    after = sidebar.read_text() if sidebar.exists() else None
    if before != after: problems.append("nbs/sidebar.yml was out of date (nbdev-proc-nbs just rewrote it): commit it")
    want, got = expected_sidebar(nbs), read_sidebar(sidebar)
    if sorted(got) != sorted(want) or got[:1] != want[:1]:
        problems.append(f"nbs/sidebar.yml lists {got}; it must list each of {want} once, index.ipynb first")
    return problems

def config_problems(nbs:Path) -> list:
    "Quarto's YAML files in `nbs` that do not parse, and `metadata-files` of `_quarto.yml` that are missing."
    import yaml
    res, cfg = [], {}
    for f in sorted(nbs.glob('*.yml')):
        try: d = yaml.safe_load(f.read_text()) or {}
        except yaml.YAMLError as e: res.append(f"nbs/{f.name}: not valid YAML: {str(e).splitlines()[0]}"); continue
        if f.name == '_quarto.yml': cfg = d
    res += [f"nbs/_quarto.yml: metadata file nbs/{m} is missing" for m in cfg.get('metadata-files', []) if not (nbs/m).exists()]
    return res

def run_pre_render(nbs:Path, proc_dir:Path) -> list:
    "Run the `pre-render` commands of `_quarto.yml` in the processed folder, as Quarto does before rendering."
    import yaml
    qy = nbs/'_quarto.yml'
    cmds = (yaml.safe_load(qy.read_text()) or {}).get('project', {}).get('pre-render', []) if qy.exists() else []
    problems = []
    for cmd in [cmds] if isinstance(cmds, str) else cmds:
        res = subprocess.run(shlex.split(cmd), cwd=proc_dir, capture_output=True, text=True)
        if res.returncode: problems.append(f"_quarto.yml pre-render {cmd!r} failed: {(res.stderr or res.stdout).strip()}")
    return problems

# ---------------------------------------------------------------------------------------------- rendering

def _frontmatter(nb) -> dict:
    import yaml
    c = nb.cells[0] if nb.cells else None
    if c is None or c.cell_type != 'raw' or not c.source.lstrip().startswith('---'): return {}
    return yaml.safe_load(c.source.strip().strip('-')) or {}

def page_name(nb_path:Path) -> str:
    "The HTML file Quarto writes for a processed notebook (its `output-file`, else the notebook's stem)."
    import nbformat
    return _frontmatter(nbformat.read(nb_path, as_version=4)).get('output-file') or nb_path.stem + '.html'

def _link_pages(md:str, pages:dict) -> str:
    "Point links to notebooks at their pages, as Quarto does (`00_core.ipynb#x` -> `core.html#x`)."
    return re.sub(r'(\]\()([^)#\s]+\.ipynb)', lambda m: m.group(1) + pages.get(m.group(2), m.group(2)), md)

def _quartoish(nb, pages:dict={}):
    "Apply what Quarto does with nbdev's markup: title block, `#|` directives, fenced divs, links, link attributes."
    import nbformat
    fm = _frontmatter(nb)
    if fm: nb.cells.pop(0)
    cells = []
    if fm.get('title'):
        head = f"# {fm['title']}" + (f"\n\n> {fm['description']}" if fm.get('description') else '')
        cells.append(nbformat.v4.new_markdown_cell(head))
    for c in nb.cells:
        for k in set(c) - {'cell_type', 'id', 'metadata', 'source', 'outputs', 'execution_count', 'attachments'}: del c[k]
        c.metadata.pop('execution', None)
        if c.cell_type == 'markdown':
            src = re.sub(r'^:::.*$', '', c.source, flags=re.M)
            c.source = _link_pages(re.sub(r'(\]\([^)]*\))\{[^}]*\}', r'\1', src), pages)
        elif c.cell_type == 'code':
            d = directives(c.source)
            if d.get('include') == 'false': continue
            c.source = '\n'.join(l for l in c.source.splitlines() if not re.match(r'\s*#\|', l))
            if d.get('output') == 'false': c.outputs = []
            if d.get('echo') == 'false' or not c.source.strip(): c.metadata.setdefault('tags', []).append('remove_input')
            for o in c.get('outputs', []):
                md = o.get('data', {}).get('text/markdown')
                if md: o['data']['text/markdown'] = re.sub(r'(\]\([^)]*\))\{[^}]*\}', r'\1', md)
        cells.append(c)
    nb.cells = cells
    return nb

def render_pages(proc_dir:Path, out:Path) -> dict:
    "Render every processed notebook to `out` as standalone HTML; copy the other files (images, css) beside them."
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config
    cfg = Config()
    cfg.TagRemovePreprocessor.enabled = True
    cfg.TagRemovePreprocessor.remove_input_tags = {'remove_input'}
    exporter = HTMLExporter(config=cfg, template_name='lab')
    out.mkdir(parents=True, exist_ok=True)
    site = {f.relative_to(proc_dir): f.relative_to(proc_dir).parent/page_name(f) for f in proc_dir.rglob('*.ipynb')
            if not any(p.startswith('.') for p in f.relative_to(proc_dir).parts)}
    def names_from(folder):  # links as written in a notebook in `folder` -> the pages Quarto makes of them
        return {os.path.relpath(k, folder): os.path.relpath(v, folder) for k, v in site.items()}
    pages = {}
    for f in sorted(proc_dir.rglob('*')):
        rel = f.relative_to(proc_dir)
        if f.is_dir() or any(p.startswith('.') for p in rel.parts): continue
        if f.suffix != '.ipynb':
            (out/rel).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(f, out/rel); continue
        nb = nbformat.read(f, as_version=4)
        name = (rel.parent/(_frontmatter(nb).get('output-file') or f.stem + '.html')).as_posix()
        body, _ = exporter.from_notebook_node(_quartoish(nb, names_from(rel.parent)))
        (out/name).parent.mkdir(parents=True, exist_ok=True)
        (out/name).write_text(body)
        pages[name] = f
    return pages

def notebook_problems(nb_path:Path, page:str) -> list:
    "Problems visible in a processed notebook itself: error outputs and placeholders in the text."
    import nbformat
    nb, res = json.loads(nb_path.read_text()), []
    if not _frontmatter(nbformat.read(nb_path, as_version=4)).get('title'):
        res.append(f"{page}: no title (start the notebook with a markdown cell '# Title' and '> description')")
    for i, c in enumerate(nb['cells']):
        for o in c.get('outputs', []):
            if o['output_type'] == 'error': res.append(f"{page}: cell {i} shows a Python error: {o.get('ename')}: {o.get('evalue')}")
            text = ''.join(o.get('text', '')) + ''.join(o.get('data', {}).get('text/plain', ''))
            if TRACEBACK_RE.search(text): res.append(f"{page}: cell {i} output contains a traceback")
        if c['cell_type'] == 'markdown':
            m = PLACEHOLDER_RE.search(''.join(c['source']))
            if m: res.append(f"{page}: cell {i} has placeholder text {m.group(0)!r}")
    return res

def api_sections(modidx_path:Path=ROOT/'skinseg'/'_modidx.py') -> dict:
    "Exported public functions and classes by page, from nbdev's `_modidx.py`: {'core.html': ['predict', ...]}."
    ns = {}
    exec(modidx_path.read_text(), ns)
    res = {}
    for mod, syms in ns['d']['syms'].items():
        for qual, (url, _) in syms.items():
            name = qual[len(mod)+1:]
            if '.' in name or name.startswith('_'): continue  # methods are documented inside their class
            res.setdefault(url.split('#')[0], []).append(name)
    return res

# ---------------------------------------------------------------------------------------------- browser

class Chromium:
    "Headless Chromium driven over the DevTools protocol (one browser, one tab per page)."
    def __init__(self, exe:str, timeout:float=60):
        import websocket
        self.tmp = tempfile.mkdtemp(prefix='check_docs_chrome_')
        self.proc = subprocess.Popen([exe, *CHROME_FLAGS, f'--user-data-dir={self.tmp}', '--remote-debugging-port=0',
                                      'about:blank'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env={**os.environ, 'TMPDIR': self.tmp},  # its scratch files go with the profile
                                     start_new_session=True)  # one process group: `close` ends its helpers too
        self.n, self.events, self.targets = 0, [], {}
        try:
            port_file, t0 = Path(self.tmp)/'DevToolsActivePort', time.time()
            while not (port_file.exists() and len(port_file.read_text().split()) == 2):
                if self.proc.poll() is not None or time.time()-t0 > timeout:
                    raise RuntimeError(f"{exe} did not start (exit status {self.proc.returncode})")
                time.sleep(0.1)
            port, path = port_file.read_text().split()
            self.ws = websocket.create_connection(f'ws://127.0.0.1:{port}{path}', suppress_origin=True, timeout=timeout)
        except BaseException: self.close(); raise

    def send(self, method:str, session:str=None, **params):
        self.n += 1
        msg = dict(id=self.n, method=method, params=params, **({'sessionId': session} if session else {}))
        self.ws.send(json.dumps(msg))
        while True:
            r = json.loads(self.ws.recv())
            if r.get('id') == self.n:
                if 'error' in r: raise RuntimeError(f"{method}: {r['error'].get('message')}")
                return r.get('result', {})
            self.events.append(r)

    def wait_event(self, method:str, session:str, timeout:float=30):
        t0 = time.time()
        while time.time()-t0 < timeout:
            for i, e in enumerate(self.events):
                if e.get('method') == method and e.get('sessionId') == session: return self.events.pop(i)
            self.events.append(json.loads(self.ws.recv()))
        raise TimeoutError(method)

    def open(self, url:str, width:int=1280, height:int=1000) -> str:
        "A new tab showing `url`, loaded; returns its session id."
        target = self.send('Target.createTarget', url='about:blank')['targetId']
        s = self.send('Target.attachToTarget', targetId=target, flatten=True)['sessionId']
        self.send('Page.enable', s)
        self.send('Emulation.setDeviceMetricsOverride', s, width=width, height=height, deviceScaleFactor=1, mobile=False)
        self.events.clear()
        nav = self.send('Page.navigate', s, url=url)
        if nav.get('errorText'): raise RuntimeError(f"cannot open {url}: {nav['errorText']}")
        self.wait_event('Page.loadEventFired', s)
        self.targets[s] = target
        return s

    def close_tab(self, session:str): self.send('Target.closeTarget', targetId=self.targets.pop(session))

    def eval(self, session:str, js:str):
        r = self.send('Runtime.evaluate', session, expression=js, awaitPromise=True, returnByValue=True)
        if 'exceptionDetails' in r: raise RuntimeError(f"page script failed: {r['exceptionDetails'].get('text')}")
        return r['result'].get('value')

    def screenshot(self, session:str, path:Path, max_height:int=6000):
        "PNG of the whole page (down to `max_height` pixels)."
        size = self.send('Page.getLayoutMetrics', session)['cssContentSize']
        clip = dict(x=0, y=0, width=size['width'], height=min(size['height'], max_height), scale=1)
        shot = self.send('Page.captureScreenshot', session, format='png', clip=clip, captureBeyondViewport=True)
        Path(path).write_bytes(base64.b64decode(shot['data']))

    def close(self, timeout:float=30):
        "End Chromium and every process it started, then remove its profile folder."
        # Helper processes (the network service) can outlive a browser stopped by a signal and write into the
        # profile after it is removed: ask for an orderly exit, then end the whole process group.
        if getattr(self, 'ws', None):
            try: self.ws.send(json.dumps(dict(id=self.n+1, method='Browser.close')))
            except Exception: pass
            self.ws.close()
            try: self.proc.wait(timeout)
            except subprocess.TimeoutExpired: pass
        t0 = time.time()
        while process_group_alive(self.proc.pid) and time.time()-t0 < timeout:
            try: os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError): break
            time.sleep(0.1)
        if process_group_alive(self.proc.pid): print(f"check_docs: warning: Chromium's processes outlived {timeout:g} s", file=sys.stderr)
        try: self.proc.wait(timeout)
        except subprocess.TimeoutExpired: pass
        shutil.rmtree(self.tmp, ignore_errors=True)

def exit_on_sigterm():
    "Turn SIGTERM (a CI timeout) into `SystemExit`, so `finally` closes the browser: its own session no longer gets our signals."
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))

def process_group_alive(pgid:int) -> bool:
    "Whether a process of group `pgid` still runs (zombies, which write nothing, do not count)."
    procs = Path('/proc')
    if not procs.is_dir():
        try: os.killpg(pgid, 0); return True
        except PermissionError: return True  # there, though not ours to signal
        except ProcessLookupError: return False
    for p in procs.iterdir():
        if not p.name.isdigit(): continue
        try: state, _, pgrp = (p/'stat').read_text().rsplit(')', 1)[1].split()[:3]
        except (OSError, IndexError): continue
        if int(pgrp) == pgid and state != 'Z': return True
    return False

# Runs in each page: images that did not load, tracebacks in outputs, and the API sections it finds.
PAGE_JS = r"""
(async (names) => {
  const imgs = Array.from(document.images);
  imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.complete ? null :
      new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); setTimeout(r, 10000); })));
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0))
                     .map(i => (i.getAttribute('src') || '(no src)').slice(0, 80));
  const tb = /Traceback \(most recent call last\)|^\w*(?:Error|Exception)\s+Traceback/m;
  const tracebacks = Array.from(document.querySelectorAll('.jp-OutputArea-output'))
                          .filter(o => tb.test(o.innerText)).map(o => o.innerText.trim().split('\n').pop().slice(0, 120));
  const api = {};
  // show_doc sections are headings in cell outputs (a prose heading or the page title may share the name)
  const heads = Array.from(document.querySelectorAll('.jp-OutputArea-output :is(h1,h2,h3,h4,h5)'));
  const section = h => {
    let sig = false, doc = '';
    for (let e = h.nextElementSibling; e && !/^H[1-5]$/.test(e.tagName) && e.tagName !== 'HR'; e = e.nextElementSibling) {
      const pre = e.tagName === 'PRE' ? e : e.querySelector('pre');
      if (pre && pre.innerText.includes(h.dataset.name.split('.').pop())) sig = true;
      else doc += e.innerText.trim();
    }
    return !sig ? 'no signature' : (doc ? 'ok' : 'no docstring');
  };
  for (const name of names) {
    const found = heads.filter(h => h.textContent.replace('\u00b6', '').trim() === name);
    found.forEach(h => { h.dataset.name = name; });
    const states = found.map(section);
    api[name] = !found.length ? 'missing' : (states.includes('ok') ? 'ok' : states[0]);
  }
  const links = Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))
                     .filter(h => !/^(?:[a-z][a-z0-9+.-]*:|#|\/)/i.test(h));
  return {n_img: imgs.length, broken, tracebacks, api, links, text: document.body.innerText.length};
})
"""

def browser_problems(out:Path, pages:list, api:dict, chrome:str, home:str='index.html') -> tuple:
    "Open every page of `out` in Chromium; problems found, and how many images and API sections were checked."
    handler = functools.partial(_QuietHandler, directory=str(out))
    server = _QuietServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f'http://127.0.0.1:{server.server_address[1]}/'
    problems, n_img, n_api = [], 0, 0
    browser = Chromium(chrome)
    try:
        for page in pages:
            s = browser.open(base + page)
            r = browser.eval(s, f"{PAGE_JS}({json.dumps(api.get(page, []))})")
            n_img += r['n_img']
            if r['text'] == 0: problems.append(f"{page}: the page is empty")
            problems += [f"{page}: image does not load: {src}" for src in r['broken']]
            dead = sorted({h for h in r['links'] if not (out/page).parent.joinpath(re.split('[#?]', h)[0]).exists()})
            problems += [f"{page}: link to a missing page or file: {h}" for h in dead]
            problems += [f"{page}: an output shows a Python traceback ({last})" for last in r['tracebacks']]
            for name, state in r['api'].items():
                n_api += 1
                if state == 'missing': problems.append(f"{page}: no API section (show_doc) for exported `{name}`")
                elif state != 'ok': problems.append(f"{page}: API section `{name}` is empty ({state})")
            if page == home: browser.screenshot(s, out/'home.png')
            browser.close_tab(s)
    finally:
        browser.close(); server.shutdown(); server.server_close()
    missing = sorted(set(api) - set(pages))
    problems += [f"{p}: page missing, but _modidx.py documents {', '.join(api[p])} there" for p in missing]
    return problems, n_img, n_api

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass

class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # Chromium drops connections it no longer needs (a favicon): not a problem of the docs
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)): super().handle_error(request, client_address)

# ---------------------------------------------------------------------------------------------- main

def check_docs(proc_dir:Path=None, out:Path=ROOT/'docs_check', api:dict=None, chrome:str=None) -> list:
    "All problems of the docs site, one line each; `proc_dir` None: process the project's notebooks first."
    t0, problems = time.time(), []
    if proc_dir is None:
        problems += run_nbdev_proc(ROOT)
        if any(p.startswith('nbdev-proc-nbs failed') for p in problems): return problems
        proc_dir = ROOT/'_proc'
        problems += config_problems(ROOT/'nbs') + run_pre_render(ROOT/'nbs', proc_dir)
        if api is None: api = api_sections()
    proc_dir, out = Path(proc_dir), Path(out)
    shutil.rmtree(out, ignore_errors=True)
    pages = render_pages(proc_dir, out)
    for page, nb in pages.items(): problems += notebook_problems(nb, page)
    chrome = chrome or find_chromium()
    if chrome is None:
        msg = f"Chromium not found (looked for $CHROME and {', '.join(CHROME_NAMES)}): install it, e.g. apt-get install chromium"
        if os.environ.get('CI', '').lower() in ('1', 'true', 'yes'): problems.append(msg)
        else: print(f"docs-check: SKIPPED the browser check: {msg}", file=sys.stderr)
        return problems
    home = 'index.html' if 'index.html' in pages else sorted(pages)[0]
    found, n_img, n_api = browser_problems(out, sorted(pages), api or {}, chrome, home=home)
    problems += found
    print(f"docs-check: {len(pages)} pages, {n_img} images, {n_api} API sections checked in Chromium "
          f"in {time.time()-t0:.0f} s; home page screenshot: {out/'home.png'}")
    return problems

def main(argv=None) -> int:
    import argparse
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--proc_dir', help='already processed notebooks: skip nbdev-proc-nbs and the API check')
    p.add_argument('--out', default=str(ROOT/'docs_check'), help='where the HTML pages and home.png go')
    args = p.parse_args(argv)
    problems = check_docs(args.proc_dir and Path(args.proc_dir), Path(args.out))
    for line in problems: print(f"docs-check: {line}")
    if problems: print(f"docs-check: FAILED, {len(problems)} problem(s)")
    else: print("docs-check: OK")
    return 1 if problems else 0

if __name__ == '__main__':
    exit_on_sigterm()
    sys.exit(main())
