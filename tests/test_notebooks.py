"""Every notebook in nbs/ as one pytest case. Library notebooks run with nbdev's test semantics (cells flagged `full`
skipped); lessons run the way Jupyter's Run All runs them: every cell, whatever its flags, in a kernel started in the
lesson's folder, and any error output fails. So the lessons' own switches (`FULL`, `SUBMIT`) must keep a run on the
sample safe, and the static checks below keep those switches and nbdev's flags in step."""
import ast, json, os, re, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
NBS = sorted(p for p in (ROOT/'nbs').rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)
LESSONS = [p for p in NBS if p.parent.name == 'lessons']

def _env():
    env = {**os.environ, 'IN_TEST': '1', 'MPLBACKEND': 'Agg'}
    if os.environ.get('PYTEST_XDIST_WORKER'): env['OMP_NUM_THREADS'] = '1'   # one core per pytest worker
    return env

@pytest.mark.parametrize('nb', NBS, ids=[str(p.relative_to(ROOT/'nbs')) for p in NBS])
def test_notebook(nb):
    if nb in LESSONS: run_like_jupyter(nb); return
    # each notebook in a fresh process: no state leaks from one notebook into the next
    r = subprocess.run([sys.executable, str(ROOT/'.ci'/'nbrun.py'), str(nb)], capture_output=True, text=True, env=_env())
    assert r.returncode == 0, f'{nb.name} failed:\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}'

def _code_cells(fn):
    for i, c in enumerate(json.loads(Path(fn).read_text())['cells']):
        if c['cell_type'] == 'code': yield i, ''.join(c['source'])

def _builds_learner(nb: Path) -> str | None:
    "'conv' if the lesson's code builds a ConvLearner, 'table' if it builds Rossmann's embedding network, else None."
    code = '\n'.join(src for _, src in _code_cells(nb))
    return 'conv' if 'ConvLearner.pretrained' in code else 'table' if 'get_learner(' in code else None

def _other_path(nb: Path) -> str:
    """The LESSONKIT_PRECISION value of the numeric path this lesson does NOT take by default on this machine: 'fp32' where
    its models run in reduced precision (a CPU with native bfloat16, a GPU), else 'bf16' (emulated where the CPU lacks it).
    The image lessons' models have convolutions; Rossmann's has none (float32 by default on every CPU)."""
    from lessonkit.core import resolved_precision
    return 'bf16' if resolved_precision(conv=_builds_learner(nb) == 'conv') == 'fp32' else 'fp32'

@pytest.mark.parametrize('nb', LESSONS, ids=[f'{p.name}-{_other_path(p)}' for p in LESSONS])
def test_lesson_on_the_other_path(nb, monkeypatch):
    """Every lesson a second time, forced onto the numeric path a student's machine takes where this one does not: the
    float32 path of CPUs without native bfloat16, or the bfloat16 path of those with it (and of GPUs). Same asserts."""
    other = _other_path(nb)
    monkeypatch.setenv('LESSONKIT_PRECISION', other)
    ran = run_like_jupyter(nb)
    said = [l for c in ran.cells if c.cell_type == 'code' for o in c.get('outputs', []) for l in o.get('text', '').splitlines()
            if l.startswith('precision:')]
    if _builds_learner(nb): assert said and all(f'set by LESSONKIT_PRECISION={other}' in l for l in said), said
    else: assert not said, said                          # a lesson without a Learner (how a CNN works) computes by hand

def run_like_jupyter(fn: Path):
    "Run All: every code cell in order, in a fresh kernel whose working folder is the notebook's; fail on an error output."
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    nb = nbformat.read(fn, as_version=4)
    env = _env(); env.pop('MPLBACKEND')       # Jupyter's own (inline) matplotlib backend, as a student gets it
    client = NotebookClient(nb, timeout=1800, kernel_name='python3', allow_errors=False,
                            resources={'metadata': {'path': str(fn.parent)}})
    try: client.execute(env=env)
    except CellExecutionError as e: pytest.fail(f'{fn.name}: a cell failed under Run All:\n{str(e)[-6000:]}', pytrace=False)
    errors = [o for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', []) if o.get('output_type') == 'error']
    assert not errors, errors
    return nb

# --- the lessons' switches and nbdev's flags agree (static: no kernel)

def _flags(src):
    "nbdev's directives of a cell: {'full': [], 'eval:': ['false'], ...}."
    out = {}
    for l in src.splitlines():
        m = re.match(r'\s*#\|\s*(\S+)\s*(.*)', l)
        if m: out[m.group(1)] = m.group(2).split()
    return out

def _guard(src, switch):
    "The cell's `if <switch>:` statement (None if the cell has none at top level) and the whole parsed cell."
    tree = ast.parse(src)
    ifs = [s for s in tree.body if isinstance(s, ast.If) and isinstance(s.test, ast.Name) and s.test.id == switch]
    return (ifs[0] if ifs else None), tree

def _skip_message(node: ast.If) -> str:
    "The text printed by the `else:` of a guard: one print call with string pieces."
    assert len(node.orelse) == 1, 'the else branch must be one print(...) saying what was skipped'
    call = node.orelse[0].value
    assert isinstance(call, ast.Call) and getattr(call.func, 'id', '') == 'print', ast.unparse(node.orelse[0])
    return ' '.join(str(v.value) for v in ast.walk(call) if isinstance(v, ast.Constant) and isinstance(v.value, str))

@pytest.mark.parametrize('nb', LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_switches_match_flags(nb):
    for i, src in _code_cells(nb):
        flags = _flags(src)
        full_if, tree = _guard(src, 'FULL')
        calls = {getattr(n.func, 'id', getattr(n.func, 'attr', None)) for n in ast.walk(tree) if isinstance(n, ast.Call)}
        where = f'{nb.name}, code cell {i}'
        if 'full' in flags:   # skipped by nbdev_test: under Run All it must skip itself on the sample, and say how to run it
            assert full_if is not None and len(tree.body) == 1, f'{where}: a `#| full` cell must be one `if FULL:` ... `else: print(...)`'
            assert 'LESSONKIT_FULL=1' in _skip_message(full_if), f'{where}: the skip message must say how to turn it on (LESSONKIT_FULL=1)'
        elif full_if is not None and full_if.orelse:
            pytest.fail(f'{where}: skips work on the sample with `if FULL:` but is not flagged `#| full`')
        if 'submit' in calls or flags.get('eval:') == ['false']:
            sub_if, tree = _guard(src, 'SUBMIT')
            assert flags.get('eval:') == ['false'], f'{where}: a cell that uploads to Kaggle must be flagged `#| eval: false`'
            assert re.search(r'^SUBMIT = False\b', src, re.M), f'{where}: the upload switch must be `SUBMIT = False` in the cell'
            assert sub_if is not None, f'{where}: `#| eval: false` cells run under Run All: guard them with `if SUBMIT:`'
            assert 'submit' not in {getattr(n.func, 'id', None) for s in tree.body if s is not sub_if
                                    for n in ast.walk(s) if isinstance(n, ast.Call)}, f'{where}: submit(...) outside `if SUBMIT:`'
            assert 'SUBMIT = True' in _skip_message(sub_if), f'{where}: the skip message must say how to upload (SUBMIT = True)'

def test_switch_check_catches_an_unguarded_cell(tmp_path):
    "The static check fails on the cells it exists to catch."
    def lesson(src):
        (tmp_path/'lessons').mkdir(exist_ok=True); fn = tmp_path/'lessons'/'x.ipynb'
        fn.write_text(json.dumps({'cells': [{'cell_type': 'code', 'source': src, 'metadata': {}, 'outputs': []}]})); return fn
    bad = ["#| full\nlearn.fit(1e-2, 3)",                                          # not guarded
           "#| full\nif FULL: learn.fit(1e-2, 3)",                                   # no skip message
           "#| full\nif FULL: learn.fit(1e-2, 3)\nelse: print('skipped')",           # does not say how to turn it on
           "if FULL: learn.fit(1e-2, 3)\nelse: print('set LESSONKIT_FULL=1')",        # guarded but not flagged
           "#| eval: false\nsubmit(sub_fn, 'x', 'y')",                               # upload not behind SUBMIT
           "submit(sub_fn, 'x', 'y')",                                               # not flagged
           "#| eval: false\nSUBMIT = False\nif SUBMIT: submit(sub_fn, 'x', 'y')\nelse: print('not sent')"]
    for src in bad:
        with pytest.raises((AssertionError, pytest.fail.Exception)): test_lesson_switches_match_flags(lesson(src))
    test_lesson_switches_match_flags(lesson("#| eval: false\nSUBMIT = False\nif SUBMIT: submit(sub_fn, 'x', 'y')\n"
                                            "else: print('set SUBMIT = True to upload')"))
