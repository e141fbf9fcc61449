#!/usr/bin/env python
"""Check the first tutorial in a real browser: JupyterLab and headless Chromium run it as a user would.

JupyterLab is started on 127.0.0.1 (a free port, a random token, no browser) with its own temporary runtime,
config, data, IPython and TMPDIR folders, serving a temporary copy of `nbs/` (the committed notebooks
never change; the shared data is passed through `$SKINSEG_DATA` when there is some, else the tutorial uses its
synthetic data). Headless Chromium, found and driven as in `docs/check_docs.py`, opens the notebook at
`lab/tree/...`, runs JupyterLab's command `notebook:run-all-cells` with `SKINSEG_QUICK=1` set, and waits for the
kernel to go idle. The check fails, naming the cell, on an error output, a cell left unrun, or a kernel that died or
was restarted (checked in the notebook and through the REST API `/api/sessions`, `/api/kernels`). A screenshot of
JupyterLab goes to `docs_check/lab_<notebook>.png`, beside the docs check's screenshots; everything else is removed.

    python docs/check_lab.py                                   # nbs/tutorials/01_explore.ipynb (`make lab-check`)
    python docs/check_lab.py --notebook nbs/tutorials/05_use.ipynb --timeout 900

Without Chromium the check is skipped with a message, unless CI=true, where that is a failure.
"""
import json, os, secrets, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.parse, urllib.request
from pathlib import Path
from check_docs import Chromium, find_chromium, CHROME_NAMES, exit_on_sigterm  # docs/ is on sys.path when this script runs

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT/'nbs'/'tutorials'

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def shared_data_above(folder:Path):
    "The first `shared/data` in `folder` or above (where `skinseg.core.find_data_dir` looks), or None."
    folder = Path(folder).resolve()
    return next((p/'shared'/'data' for p in [folder, *folder.parents] if (p/'shared'/'data').is_dir()), None)

class Lab:
    "A JupyterLab server on 127.0.0.1 serving `root`, with its Jupyter/IPython folders under `home`."
    def __init__(self, root:Path, home:Path, env:dict, timeout:float=180):
        self.port, self.token = free_port(), secrets.token_hex(24)
        self.base = f'http://127.0.0.1:{self.port}'
        settings = home/'config'/'lab'/'user-settings'/'@jupyterlab'/'apputils-extension'
        settings.mkdir(parents=True)  # no news or update checks (and their pop-up)
        (settings/'notification.jupyterlab-settings').write_text(json.dumps({'fetchNews': 'false', 'checkForUpdates': False}))
        self.log = open(home/'lab.log', 'w')
        cmd = [sys.executable, '-m', 'jupyterlab', '--no-browser', '--ServerApp.ip=127.0.0.1', f'--ServerApp.port={self.port}',
               '--ServerApp.port_retries=0', f'--IdentityProvider.token={self.token}', f'--ServerApp.root_dir={root}',
               '--LabApp.expose_app_in_browser=True', '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate',
               '--ServerApp.terminals_enabled=False', '--LabApp.extension_manager=readonly']
        if hasattr(os, 'geteuid') and os.geteuid() == 0: cmd.append('--allow-root')  # CI containers
        self.proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        t0 = time.time()
        while True:
            try: self.api('status'); break
            except OSError: pass
            if self.proc.poll() is not None or time.time()-t0 > timeout:
                self.close()
                raise RuntimeError(f"JupyterLab did not start in {timeout:.0f} s (exit status {self.proc.returncode}):\n"
                                   + (home/'lab.log').read_text()[-3000:])
            time.sleep(0.5)

    def api(self, path:str, method:str='GET'):
        req = urllib.request.Request(f'{self.base}/api/{path}', method=method,
                                     headers={'Authorization': f'token {self.token}'})
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
            return json.loads(body) if body else None

    def url(self, path:str) -> str:
        return f'{self.base}/lab/tree/{urllib.parse.quote(path)}?reset&token={self.token}'

    def close(self):
        "Shut the kernels down through the API, then stop the server (and anything left in its process group)."
        if self.proc.poll() is None:
            try:
                for s in self.api('sessions'): self.api(f"sessions/{s['id']}", 'DELETE')
            except OSError: pass
            self.proc.send_signal(signal.SIGINT); time.sleep(0.2); self.proc.send_signal(signal.SIGINT)  # SIGINT twice: stop
            try: self.proc.wait(20)
            except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()
        try: os.killpg(self.proc.pid, signal.SIGKILL)  # kernels it might have left: same process group
        except (ProcessLookupError, PermissionError): pass
        self.log.close()

# In the page: the notebook widget, opened and with its kernel started ({state: ...} while JupyterLab loads).
OPEN_JS = r"""
(async (path) => {
  const app = window.jupyterapp;
  if (!app) return {state: 'loading'};
  await app.restored;
  let w = Array.from(app.shell.widgets('main')).find(x => x.context && x.context.path === path);
  if (!w) w = await app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
  await w.context.ready; await w.sessionContext.ready;
  app.shell.activateById(w.id);
  window.__check = {widget: w, done: false};
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  return {state: k ? 'ready' : 'no kernel', kernel: k ? k.name : null, id: k ? k.id : null};
})
"""
RUN_JS = r"""
(() => {
  const c = window.__check, app = window.jupyterapp;
  app.shell.activateById(c.widget.id);
  app.commands.execute('notebook:run-all-cells').then(r => { c.done = true; c.ok = r; },
                                                     e => { c.done = true; c.ok = false; c.error = String(e); });
  return true;
})()
"""
POLL_JS = r"""
(() => {
  const c = window.__check, s = c.widget.sessionContext;
  const k = s.session && s.session.kernel;
  return {done: c.done, ok: c.ok, error: c.error || null, status: s.kernelDisplayStatus, id: k ? k.id : null};
})()
"""
# The outputs of the notebook as JupyterLab holds them: errors, stderr, and code cells left unrun.
OUTPUTS_JS = r"""
(() => {
  const m = window.__check.widget.content.model, res = [];
  for (let i = 0; i < m.cells.length; i++) {
    const c = m.cells.get(i);
    if (c.type !== 'code') continue;
    const outs = c.outputs.toJSON(), src = c.sharedModel.getSource();
    res.push({i, src: src.split('\n').find(l => l.trim() && !l.startsWith('#|')) || '', empty: !src.trim(),
              count: c.executionCount,
              errors: outs.filter(o => o.output_type === 'error').map(o => `${o.ename}: ${o.evalue}`),
              stderr: outs.filter(o => o.output_type === 'stream' && o.name === 'stderr')
                          .map(o => [].concat(o.text).join('').trim().split('\n').pop().slice(0, 160))});
  }
  return {cells: res};
})()
"""

def check_lab(notebook:Path=TUTORIALS/'01_explore.ipynb', out:Path=ROOT/'docs_check', timeout:float=600,
              chrome:str=None) -> list:
    "Run `notebook` in JupyterLab in headless Chromium; the problems found, one line each."
    t0, notebook = time.time(), Path(notebook).resolve()
    if not notebook.exists():
        return [f"{notebook} does not exist (the browser check runs the first tutorial, nbs/tutorials/01_explore.ipynb)"]
    chrome = chrome or find_chromium()
    if chrome is None:
        msg = f"Chromium not found (looked for $CHROME and {', '.join(CHROME_NAMES)}): install it, e.g. apt-get install chromium"
        if os.environ.get('CI', '').lower() in ('1', 'true', 'yes'): return [msg]
        print(f"lab-check: SKIPPED: {msg}", file=sys.stderr); return []
    name, problems = notebook.name, []
    home = Path(tempfile.mkdtemp(prefix='skinseg-lab-'))
    root = home/'root'
    # All of nbs/ (2 MB) for a notebook in it, so that its links and files relative to it work as in the repository
    top = ROOT/'nbs' if (ROOT/'nbs') in notebook.parents else notebook.parent
    shutil.copytree(top, root/top.name, ignore=shutil.ignore_patterns('.ipynb_checkpoints', '_proc', '_docs'))
    path = (Path(top.name)/notebook.relative_to(top)).as_posix()
    dirs = dict(JUPYTER_RUNTIME_DIR='runtime', JUPYTER_CONFIG_DIR='config', JUPYTER_DATA_DIR='data', IPYTHONDIR='ipython',
                TMPDIR='tmp', MPLCONFIGDIR='mpl')
    for d in dirs.values(): (home/d).mkdir(exist_ok=True)
    pythonpath = os.pathsep.join([str(ROOT)] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p])
    env = {**os.environ, **{k: str(home/v) for k, v in dirs.items()}, 'SKINSEG_QUICK': '1', 'PYTHONPATH': pythonpath}
    data = os.environ.get('SKINSEG_DATA') or shared_data_above(notebook.parent)
    if data: env['SKINSEG_DATA'] = str(data)
    lab = browser = None
    out.mkdir(parents=True, exist_ok=True)
    shot = out/f'lab_{notebook.stem}.png'
    try:
        lab = Lab(root, home, env)
        t_lab = time.time() - t0
        browser = Chromium(chrome, timeout=120)
        s = browser.open(lab.url(path))
        t1 = time.time()
        while (r := browser.eval(s, f"{OPEN_JS}({json.dumps(path)})"))['state'] == 'loading':
            if time.time()-t1 > 120: raise TimeoutError("JupyterLab did not load in the browser in 120 s")
            time.sleep(0.5)
        if r['state'] != 'ready': raise RuntimeError(f"{name}: JupyterLab started no kernel for it ({r['state']})")
        kernel_id = r['id']
        print(f"lab-check: JupyterLab up in {t_lab:.0f} s, {name} open with kernel {r['kernel']} "
              f"({'data: ' + str(data) if data else 'no data: synthetic'}); running all cells", flush=True)
        t1 = time.time()
        while (st := browser.eval(s, POLL_JS))['status'] != 'idle':  # the kernel connected and ready
            if st['status'] == 'dead' or time.time()-t1 > 120:
                raise RuntimeError(f"the kernel did not become idle after starting (status {st['status']!r})")
            time.sleep(0.5)
        browser.eval(s, RUN_JS)
        t_run, seen = time.time(), set()
        while True:
            st = browser.eval(s, POLL_JS)
            seen.add(st['status'])
            if st['done'] and st['status'] == 'idle': break
            if st['status'] == 'dead' or st['id'] != kernel_id:
                problems.append(f"{name}: the kernel died or was restarted while running (status {st['status']!r})"); break
            if time.time()-t_run > timeout:
                problems.append(f"{name}: still running after {timeout:.0f} s (kernel {st['status']})"); break
            time.sleep(1)
        run_s = time.time() - t_run
        if seen & {'restarting', 'autorestarting'}:
            problems.append(f"{name}: the kernel restarted while running (did it die, e.g. out of memory?)")
        if st.get('error'): problems.append(f"{name}: run-all failed in JupyterLab: {st['error']}")
        res = browser.eval(s, OUTPUTS_JS)
        browser.screenshot(s, shot)
        for c in res['cells']:
            where = f"{name}: cell {c['i']} ({c['src'][:60]!r})"
            problems += [f"{where} shows an error: {e}" for e in c['errors']]
            for line in c['stderr']: print(f"lab-check: note: {where} wrote to stderr: {line}", file=sys.stderr)
        unrun = [c for c in res['cells'] if c['count'] is None and not c['empty']]
        if unrun and not any(c['errors'] for c in res['cells']):  # after an error the rest is skipped, as it should be
            problems.append(f"{name}: {len(unrun)} code cell(s) not run, the first: cell {unrun[0]['i']} ({unrun[0]['src'][:60]!r})")
        # The server's view: the session is still there, with the same kernel, alive and idle.
        sessions = [x for x in lab.api('sessions') if x.get('path') == path]
        kernels = {k['id']: k for k in lab.api('kernels')}
        if not sessions: problems.append(f"{name}: no kernel session left on the server (/api/sessions)")
        elif sessions[0]['kernel']['id'] != kernel_id: problems.append(f"{name}: the kernel was replaced (/api/sessions)")
        elif kernels.get(kernel_id, {}).get('execution_state') != 'idle':
            problems.append(f"{name}: kernel state {kernels.get(kernel_id, {}).get('execution_state')!r} "
                            "at the end (/api/kernels), not idle")
        print(f"lab-check: {name}: {len(res['cells'])} code cells run in JupyterLab in {run_s:.0f} s "
              f"({time.time()-t0:.0f} s in all); screenshot: {shot}")
    except Exception as e:
        problems.append(f"{name}: the browser check broke down: {type(e).__name__}: {e}")
        if lab and (home/'lab.log').exists(): print((home/'lab.log').read_text()[-2000:], file=sys.stderr)
    finally:
        if browser: browser.close()
        if lab: lab.close()
        shutil.rmtree(home, ignore_errors=True)
    return problems

def main(argv=None) -> int:
    import argparse
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--notebook', default=str(TUTORIALS/'01_explore.ipynb'), help='the notebook to run')
    p.add_argument('--out', default=str(ROOT/'docs_check'), help='where the screenshot goes')
    p.add_argument('--timeout', type=float, default=600, help='seconds the notebook may run')
    args = p.parse_args(argv)
    problems = check_lab(Path(args.notebook), Path(args.out), args.timeout)
    for line in problems: print(f"lab-check: {line}")
    print(f"lab-check: FAILED, {len(problems)} problem(s)" if problems else "lab-check: OK")
    return 1 if problems else 0

if __name__ == '__main__':
    exit_on_sigterm()
    sys.exit(main())
