"""Each lesson as a student runs it: JupyterLab from this project's virtual environment, a real (headless) Chromium
driven by Playwright, Run > Run All Cells, wait until every cell has run. Asserts: no error output; while a fit ran a
progress bar was on screen, and the epoch table is there afterwards; figures rendered as images; the kernel is the
virtual environment's Python, started in the lesson's folder. One screenshot per lesson: out/browser-<lesson>.png.

Run it with `make test-browser` (it is not part of `make test`). It needs Debian's Chromium (`apt-get install -y
chromium`; or set LESSONKIT_CHROMIUM to a Chromium binary): Playwright's own browser download is not used."""
import hashlib, json, os, secrets, shutil, signal, socket, subprocess, sys, time, urllib.request
from pathlib import Path
from types import SimpleNamespace
import pytest

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT/'nbs'/'lessons').glob('*.ipynb'))
CHROMIUM = os.environ.get('LESSONKIT_CHROMIUM', '/usr/bin/chromium')
OUT = ROOT/'out'
RUN_TIMEOUT = 1800   # seconds for one lesson's Run All

if not Path(CHROMIUM).is_file():
    pytest.skip(f'No Chromium at {CHROMIUM}: install it with `sudo apt-get install -y chromium` (Debian/Ubuntu), or set '
                'LESSONKIT_CHROMIUM to a Chromium binary, then run `make test-browser`.', allow_module_level=True)
playwright = pytest.importorskip('playwright.sync_api', reason='Playwright is missing: run `make install` (requirements.txt pins it).')

def _free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def _get(url, data=None, method=None, timeout=10):
    req = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(req, timeout=timeout) as r: body = r.read()
    return json.loads(body) if body else None

def _alive(pid: int) -> bool:
    try: os.kill(pid, 0)
    except ProcessLookupError: return False
    try:   # a zombie (exited, not yet reaped by its parent) is not running
        return Path(f'/proc/{pid}/stat').read_text().split(') ')[-1][0] != 'Z'
    except OSError: return False

def _started_by(runtime: Path) -> list:
    "Running processes whose command line names a file in `runtime` (the kernels of our server: `-f kernel-<id>.json`)."
    pids = []
    for d in Path('/proc').glob('[0-9]*'):
        try: cmd = (d/'cmdline').read_bytes().decode(errors='replace')
        except OSError: continue
        if str(runtime) in cmd and _alive(int(d.name)): pids.append(int(d.name))
    return pids

def _settings(d: Path):
    "JupyterLab settings for the run: no autosave (the lessons in nbs/ must stay clean), every cell in the DOM, no news."
    for plugin, vals in {'docmanager-extension/plugin': {'autosave': False},
                         'notebook-extension/tracker': {'windowingMode': 'none'},
                         'apputils-extension/notification': {'fetchNews': 'false', 'checkForUpdates': False}}.items():
        f = d/'@jupyterlab'/f'{plugin}.jupyterlab-settings'; f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(vals))

@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    "A JupyterLab server from this environment on 127.0.0.1 (free port, random token); stopped, with its kernels, after."
    tmp = tmp_path_factory.mktemp('lab')
    for d in ('settings', 'runtime', 'workspaces', 'config', 'data', 'checkpoints'): (tmp/d).mkdir()
    _settings(tmp/'settings')
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k not in ('IN_TEST', 'CI', 'MPLBACKEND', 'LESSONKIT_FULL', 'PYTEST_XDIST_WORKER')}
    env.update(JUPYTERLAB_SETTINGS_DIR=str(tmp/'settings'), JUPYTER_RUNTIME_DIR=str(tmp/'runtime'),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp/'workspaces'), JUPYTER_CONFIG_DIR=str(tmp/'config'),
               JUPYTER_DATA_DIR=str(tmp/'data'))   # only this environment's kernels and settings are seen
    jupyter = Path(sys.executable).parent/'jupyter'
    cmd = [str(jupyter), 'lab', '--no-browser', '--ip=127.0.0.1', f'--port={port}', '--ServerApp.port_retries=0',
           f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={ROOT}', '--LabApp.expose_app_in_browser=True',
           f'--FileCheckpoints.checkpoint_dir={tmp/"checkpoints"}', '--LabApp.news_url=']
    if os.geteuid() == 0: cmd.append('--allow-root')   # Jupyter refuses to run as root without it (containers)
    signal.signal(signal.SIGTERM, signal.default_int_handler)   # SIGTERM stops pytest as Ctrl-C does: the cleanup below runs
    log = open(tmp/'lab.log', 'w')
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f'http://127.0.0.1:{port}'
    srv = SimpleNamespace(base=base, token=token, proc=proc, runtime=tmp/'runtime', log=tmp/'lab.log', kernel_pids=[])
    try:
        for _ in range(240):
            if proc.poll() is not None: pytest.fail(f'jupyter lab exited:\n{srv.log.read_text()[-3000:]}')
            try: _get(f'{base}/api/status?token={token}', timeout=2); break
            except OSError: time.sleep(0.5)
        else: pytest.fail(f'jupyter lab did not answer within 120 s:\n{srv.log.read_text()[-3000:]}')
        yield srv
    finally:
        try: _get(f'{base}/api/shutdown?token={token}', data=b'', method='POST')
        except OSError: pass
        try: proc.wait(30)
        except subprocess.TimeoutExpired: os.killpg(proc.pid, 9); proc.wait(10)
        log.close()
        left = sorted(set(p for p in srv.kernel_pids if _alive(p)) | set(_started_by(tmp/'runtime')))
        for p in left: os.kill(p, 9)
        assert not left, f'kernels still running after the server stopped: {left}'

@pytest.fixture(scope='module')
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=['--no-sandbox'] if os.geteuid() == 0 else [])
        yield b
        b.close()

WATCH = """() => { window.__lk = {progress: 0};
  new MutationObserver(() => { if (document.querySelector('.jp-OutputArea-output progress')) window.__lk.progress += 1; })
    .observe(document.body, {childList: true, subtree: true, attributes: true}); }"""

KERNEL_READY = """() => { const w = window.jupyterapp?.shell?.currentWidget, k = w?.sessionContext?.session?.kernel;
  return !!(k && k.connectionStatus === 'connected' && w.sessionContext.kernelDisplayStatus === 'idle'
            && !document.querySelector('.jp-Dialog')); }"""

STATE = """() => { const nb = window.jupyterapp.shell.currentWidget.content;
  const cells = []; for (let i = 0; i < nb.model.cells.length; i++) cells.push(nb.model.cells.get(i).toJSON());
  return {cells, status: document.querySelector('.jp-Notebook-ExecutionIndicator')?.getAttribute('data-status')}; }"""

def _kernel_facts(lab, path):
    "Ask the lesson's kernel (through its connection file) where it runs from."
    from jupyter_client import BlockingKernelClient
    sess = [s for s in _get(f'{lab.base}/api/sessions?token={lab.token}') if s['path'] == path]
    assert len(sess) == 1, sess
    kc = BlockingKernelClient(connection_file=str(lab.runtime/f"kernel-{sess[0]['kernel']['id']}.json"))
    kc.load_connection_file(); kc.start_channels()
    out = []
    try:
        kc.execute_interactive("import sys, os, json, lessonkit; print(json.dumps([sys.prefix, lessonkit.__file__, os.getpid(), os.getcwd()]))",
                               timeout=60, output_hook=lambda m: out.append(m['content'].get('text', '')))
    finally: kc.stop_channels()
    prefix, lk_file, pid, cwd = json.loads(''.join(out).strip().splitlines()[-1])
    return sess[0], prefix, Path(lk_file), pid, Path(cwd)

@pytest.mark.parametrize('nb', LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_in_jupyterlab(lab, browser, nb):
    before = hashlib.sha256(nb.read_bytes()).hexdigest()
    rel = nb.relative_to(ROOT).as_posix()
    page = browser.new_page(viewport={'width': 1400, 'height': 1000})
    try:
        page.goto(f'{lab.base}/lab/workspaces/lk-{nb.stem}/tree/{rel}?token={lab.token}')   # a workspace of its own: no other tabs
        t_open = time.time()
        while not page.evaluate(KERNEL_READY):   # wait for the kernel, as a student would before Run All
            dialog = page.locator('.jp-Dialog button.jp-mod-accept')
            if dialog.count(): dialog.first.click()   # "Select Kernel": keep the one offered (the notebook's own)
            assert time.time() - t_open < 300, f'{nb.name}: the kernel was not ready within 300 s'
            time.sleep(0.5)
        page.evaluate(WATCH)
        page.locator('.lm-MenuBar-itemLabel', has_text='Run').first.click()
        page.locator('.lm-Menu-itemLabel', has_text='Run All Cells').first.click()
        t0, n_code = time.time(), sum(c['cell_type'] == 'code' for c in json.loads(nb.read_text())['cells'])
        while True:   # done: every code cell has an execution count, and the kernel is idle
            time.sleep(2)
            st = page.evaluate(STATE)
            done = [c for c in st['cells'] if c['cell_type'] == 'code' and c.get('execution_count')]
            errors = [o for c in st['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', []) if o['output_type'] == 'error']
            if errors or (len(done) == n_code and st['status'] == 'idle'): break
            assert done or time.time() - t0 < 120, f'{nb.name}: Run All Cells did not start a cell within 120 s'
            assert time.time() - t0 < RUN_TIMEOUT, f'{nb.name}: Run All did not finish in {RUN_TIMEOUT} s ({len(done)} of {n_code} cells ran)'
        assert not errors, f"{nb.name}: error output: {errors[0]['ename']}: {errors[0]['evalue']}"
        outs = [o for c in st['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', [])]
        pngs = [o for o in outs if 'image/png' in o.get('data', {})]
        imgs = page.evaluate("() => [...document.querySelectorAll('.jp-OutputArea-output img')].map(i => i.complete && i.naturalWidth > 0)")
        if 'plt.' in nb.read_text() or 'plot' in nb.read_text():
            assert pngs, f'{nb.name}: no figure was shown'
        assert len(imgs) >= len(pngs) and all(imgs), f'{nb.name}: {len(pngs)} figures in the outputs, {sum(imgs)} drawn as images'
        if '.fit(' in nb.read_text():
            assert page.evaluate('() => window.__lk.progress') > 0, f'{nb.name}: no progress bar was seen while the fits ran'
            tables = page.locator('table.lessonkit-epochs')
            assert tables.count() > 0 and tables.first.locator('tbody tr').count() > 0, f'{nb.name}: no epoch table after the fits'
            assert page.locator('.jp-OutputArea-output progress').count() == 0, f'{nb.name}: a progress bar was left behind'
            assert 'trn_loss' not in ''.join(''.join(o.get('text', '')) for o in outs if o['output_type'] == 'stream'), \
                f'{nb.name}: epoch rows were printed as text as well as shown in the table'
            tables.first.scroll_into_view_if_needed()
        OUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUT/f'browser-{nb.stem}.png'))
        sess, prefix, lk_file, pid, cwd = _kernel_facts(lab, rel)
        lab.kernel_pids.append(pid)
        assert Path(prefix).resolve() == Path(sys.prefix).resolve(), f'{nb.name}: the kernel runs {prefix}, not this environment'
        assert ROOT in lk_file.resolve().parents and cwd.resolve() == nb.parent.resolve()
        print(f'{nb.stem}: Run All took {time.time() - t0:.0f} s in JupyterLab')
    except BaseException:
        OUT.mkdir(exist_ok=True); page.screenshot(path=str(OUT/f'browser-{nb.stem}-failed.png'))
        raise
    finally:
        page.close()
    _get(f"{lab.base}/api/sessions/{sess['id']}?token={lab.token}", method='DELETE')   # stop this lesson's kernel
    for _ in range(50):
        if not _alive(pid): break
        time.sleep(0.2)
    assert not _alive(pid), f'{nb.name}: its kernel (pid {pid}) did not stop'
    assert hashlib.sha256(nb.read_bytes()).hexdigest() == before, f'{nb.name} was changed on disk by the run'
