"The house rules of skinseg's modules: one notebook per module in import order, no import loop, no import pointing back up, no private name taken from another module."
import ast, json, re
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
API = ROOT/'nbs'/'api'

def module_order() -> dict:
    "{module name: its number} from the notebooks `nbs/api/NN_name.ipynb`."
    return {m.group(2): int(m.group(1)) for p in sorted(API.glob('*.ipynb')) if (m := re.match(r'(\d\d)_(\w+)$', p.stem))}

def skinseg_imports(path:Path) -> list:
    "`(line, module imported, [names])` for every import of a skinseg module in `path`, at any depth."
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            mod = ('skinseg.' + node.module if node.module else 'skinseg') if node.level else node.module or ''
            if mod.startswith('skinseg.'): found.append((node.lineno, mod.split('.')[1], [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split('.')[1], []) for a in node.names if a.name.startswith('skinseg.')]
    return sorted(found)

def test_notebooks_numbered_without_gaps_one_per_module():
    order = module_order()
    assert sorted(order.values()) == list(range(len(order))), f"nbs/api numbers have gaps or repeats: {order}"
    for name in order:
        nb = json.loads(next(API.glob(f'*_{name}.ipynb')).read_text())
        assert any(''.join(c['source']).strip() == f'#| default_exp {name}' for c in nb['cells']), f"{name}: no `#| default_exp {name}`"
    modules = {p.stem for p in (ROOT/'skinseg').glob('*.py') if not p.stem.startswith('_')}
    assert modules == set(order), f"modules without a notebook, or notebooks without a module: {modules ^ set(order)}"

@pytest.mark.parametrize('name', sorted(module_order()))
def test_imports_point_down_and_take_no_private_names(name):
    order = module_order()
    for line, mod, names in skinseg_imports(ROOT/'skinseg'/f'{name}.py'):
        if mod == name: continue
        assert mod in order, f"skinseg/{name}.py:{line} imports unknown module skinseg.{mod}"
        assert order[mod] < order[name], (f"skinseg/{name}.py:{line} imports skinseg.{mod}, which comes later "
                                          f"({order[mod]:02d} >= {order[name]:02d}): an upward import, a possible loop")
        private = [n for n in names if n.startswith('_')]
        assert not private, f"skinseg/{name}.py:{line} takes private names {private} from skinseg.{mod}"

def test_the_check_catches_an_upward_import(tmp_path, monkeypatch):
    "The rule above fails on a planted upward import and a private import (so it cannot pass vacuously)."
    bad = tmp_path/'m.py'; bad.write_text("def f():\n    from skinseg.cli import main\nfrom .core import _secret\n")
    assert skinseg_imports(bad) == [(2, 'cli', ['main']), (3, 'core', ['_secret'])]

def private_uses(path:Path, local:set) -> list:
    "`(line, name)` for each private name `path` takes from a skinseg module or a module in `local`: imported, or read as `module._name`."
    tree, mods, found = ast.parse(path.read_text()), set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if (node.module or '').split('.')[0] in {'skinseg', *local}:
                found += [(node.lineno, a.name) for a in node.names if a.name.startswith('_') and not a.name.startswith('__')]
                if node.module == 'skinseg': mods |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.Import):
            mods |= {a.asname or a.name for a in node.names if a.name.split('.')[0] in {'skinseg', *local}}
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and getattr(node.value.func, 'id', '') == 'load':
            mods |= {t.id for t in node.targets if isinstance(t, ast.Name)}  # tests load benchmark scripts as modules
    found += [(n.lineno, f'{ast.unparse(n.value)}.{n.attr}') for n in ast.walk(tree) if isinstance(n, ast.Attribute)
              and ast.unparse(n.value) in mods and n.attr.startswith('_') and not n.attr.startswith('__')]
    return sorted(found)

def test_tests_and_benchmarks_use_only_public_names():
    "Tests and benchmarks go through the public API (and the benchmarks' `common`), as a user's code would."
    local = {p.stem for p in (ROOT/'benchmarks').glob('*.py')} | {p.stem for p in (ROOT/'tests').glob('*.py')}
    bad = [f"{p.relative_to(ROOT)}:{line} {name}" for d in ('tests', 'benchmarks') for p in sorted((ROOT/d).glob('*.py'))
           for line, name in private_uses(p, local)]
    assert not bad, f"private names used across modules: {bad}"

def test_the_public_names_check_catches_private_uses(tmp_path):
    bad = tmp_path/'t.py'
    bad.write_text("import skinseg.core as core\nfrom skinseg.model import _cache\nbp = load('bench')\nx = core._BLOCK + bp._f()\n"
                   "from common import now\nimport skinseg.layouts\ny = skinseg.layouts._list\n")
    assert private_uses(bad, {'common'}) == [(2, '_cache'), (4, 'bp._f'), (4, 'core._BLOCK'), (7, 'skinseg.layouts._list')]
