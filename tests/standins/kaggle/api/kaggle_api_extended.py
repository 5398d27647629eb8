"""The calls of kaggle 2.2.4's `KaggleApi` that lessonkit makes, answered from local files instead of kaggle.com.

Behaviour copied from kaggle 2.2.4 (kaggle/api/kaggle_api_extended.py):
- `authenticate()` reads KAGGLE_API_TOKEN, or KAGGLE_USERNAME + KAGGLE_KEY, or kaggle.json in KAGGLE_CONFIG_DIR or
  ~/.kaggle; with none it prints its help and calls exit(1) (a SystemExit).
- `competition_download_file(competition, file_name, path, force, quiet)` writes `path/<name of the served file>`;
  `competition_download_files(competition, path, force, quiet)` writes `path/<competition>.zip`.
  An existing file of the full size whose time is not older than the server's is skipped unless `force`; a smaller one
  is downloaded again (the real client resumes it using its `<file>.kaggle-partial` marker).
- HTTP errors come out as `requests.exceptions.HTTPError` carrying `.response.status_code` (kagglesdk raises them so);
  a connection that drops mid-transfer ends, after the client's retries, in `requests.exceptions.ChunkedEncodingError`,
  leaving the partial file and its `.kaggle-partial` marker on disk.
- `competition_submit(file_name, message, competition, quiet)` uploads and returns a response with a `message`.
UNCONFIRMED: the exact texts of Kaggle's error messages (only the status codes matter to lessonkit).

State lives in the folder named by KAGGLE_STANDIN_ROOT: the served files (built on first use by
tests/standins/competitions.py), `faults.json` (what to answer instead, see `standins.kaggle_faults`) and `submissions/`.
"""
from __future__ import annotations
import json, os, sys, shutil, time
from pathlib import Path
from types import SimpleNamespace

def _root() -> Path:
    r = os.environ.get('KAGGLE_STANDIN_ROOT')
    if not r: raise RuntimeError('KAGGLE_STANDIN_ROOT is not set: the Kaggle stand-in needs a folder to serve from.')
    return Path(r)

SERVED_AT = 'Mon, 18 Sep 2017 00:00:00 GMT'   # the Last-Modified the stand-in gives every file

def _http_error(status: int, url: str):
    import requests
    reason = {401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 429: 'Too Many Requests'}.get(status, 'Error')
    r = requests.Response(); r.status_code, r.reason, r.url = status, reason, url
    return requests.exceptions.HTTPError(f'{status} Client Error: {reason} for url: {url}', response=r)

def _take_fault(competition: str, file: str) -> str | None:
    "The next fault queued for this file (or '*'), removed from the queue."
    fn = _root()/'faults.json'
    if not fn.is_file(): return None
    faults = json.loads(fn.read_text())
    for key in (f'{competition}/{file}', f'{competition}/*', '*'):
        q = faults.get(key)
        if q:
            f = q.pop(0); fn.write_text(json.dumps(faults)); return f
    return None

def _served(competition: str) -> Path:
    here = Path(__file__).resolve().parents[2]
    if str(here) not in sys.path: sys.path.insert(0, str(here))
    import competitions
    layouts = json.loads((_root()/'layouts.json').read_text()) if (_root()/'layouts.json').is_file() else {}
    if competition not in competitions.COMPETITIONS: raise _http_error(404, f'https://www.kaggle.com/api/v1/competitions/{competition}')
    return competitions.build(competition, _root()/'served'/competition, **layouts.get(competition, {}))

class KaggleApi:
    def __init__(self): self._authenticated, self.config_values = False, {}

    def read_config_file(self, quiet: bool = True) -> dict:
        d = os.environ.get('KAGGLE_CONFIG_DIR') or os.path.join(os.path.expanduser('~'), '.kaggle')
        fn = Path(d)/'kaggle.json'
        return json.loads(fn.read_text()) if fn.is_file() else {}

    def authenticate(self) -> None:
        cfg = self.read_config_file()
        env = os.environ
        if env.get('KAGGLE_USERNAME') and env.get('KAGGLE_KEY'): cfg = {'username': env['KAGGLE_USERNAME'], 'key': env['KAGGLE_KEY']}
        if env.get('KAGGLE_API_TOKEN') or (cfg.get('username') and cfg.get('key')):
            self.config_values, self._authenticated = cfg, True
            return
        print('Authentication required to call the Kaggle API.\n\n(the stand-in of kaggle 2.2.4 prints its help here)')
        exit(1)

    def _check(self, competition: str, file: str):
        "Answer a request the way kaggle.com would, or raise the queued fault."
        if not self._authenticated: raise _http_error(401, f'https://www.kaggle.com/api/v1/competitions/{competition}')
        fault = _take_fault(competition, file)
        url = f'https://www.kaggle.com/api/v1/competitions/data/download/{competition}/{file}'
        if fault in ('401', '403', '404', '429'): raise _http_error(int(fault), url)
        return fault

    def competition_list_files(self, competition: str, page_token=None, page_size: int = 20):
        self._check(competition, '*list*')
        d = _served(competition)
        names = [n for n in (d/'.built').read_text().split('\n') if n != f'{competition}.zip']
        files = [SimpleNamespace(name=n, ref=n, size=(d/n).stat().st_size) for n in names]
        return SimpleNamespace(files=files, next_page_token='')

    def _deliver(self, src: Path, outfile: Path, fault: str | None, force: bool, quiet: bool):
        data = src.read_bytes()
        served = time.mktime(time.strptime(SERVED_AT, '%a, %d %b %Y %H:%M:%S %Z'))
        if not force and outfile.is_file() and outfile.stat().st_size >= len(data) and outfile.stat().st_mtime >= served:
            if not quiet: print(f'{outfile.name}: Skipping, found more recently modified local copy (use --force to force download)')
            return
        outfile.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(f'{outfile}.kaggle-partial')
        if fault == 'cut':   # the connection drops half-way; the real client keeps what it got and its marker
            partial.write_text(json.dumps({'validator': SERVED_AT, 'size': len(data)}))
            outfile.write_bytes(data[:len(data)//2])
            import requests
            raise requests.exceptions.ChunkedEncodingError(
                "('Connection broken: IncompleteRead(%d bytes read, %d more expected)')" % (len(data)//2, len(data) - len(data)//2))
        if fault == 'corrupt':  # the server sends the full length, but damaged bytes
            mid = len(data)//2; data = data[:mid] + bytes(b ^ 0xFF for b in data[mid:mid + 4096]) + data[mid + 4096:]
            data = data[:len(data) - 64] + b'\0'*64
        outfile.write_bytes(data)
        os.utime(outfile, (served, served))
        partial.unlink(missing_ok=True)

    def competition_download_file(self, competition: str, file_name: str, path: str | None = None, force: bool = False,
                                  quiet: bool = False) -> None:
        fault = self._check(competition, file_name)
        d = _served(competition)
        if file_name.startswith('.') or not (d/file_name).is_file():
            raise _http_error(404, f'https://www.kaggle.com/api/v1/competitions/data/download/{competition}/{file_name}')
        self._deliver(d/file_name, Path(path or '.')/file_name, fault, force, quiet)

    def competition_download_files(self, competition: str, path: str | None = None, force: bool = False,
                                   quiet: bool = True) -> None:
        fault = self._check(competition, '*all*')
        d = _served(competition)
        self._deliver(d/f'{competition}.zip', Path(path or '.')/f'{competition}.zip', fault, force, quiet)

    def competition_submit(self, file_name: str, message: str, competition: str, quiet: bool = False, sandbox: bool = False):
        if not self._authenticated: raise _http_error(401, f'https://www.kaggle.com/api/v1/competitions/submissions/{competition}')
        fault = _take_fault(competition, '*submit*')
        if fault in ('401', '403', '404', '409', '429'):
            raise _http_error(int(fault), f'https://www.kaggle.com/api/v1/competitions/submissions/submit/{competition}')
        _served(competition)  # 404 for an unknown competition
        out = _root()/'submissions'/competition; out.mkdir(parents=True, exist_ok=True)
        n = len(list(out.glob('*.json')))
        shutil.copy2(file_name, out/f'{n}-{Path(file_name).name}')
        (out/f'{n}.json').write_text(json.dumps({'file': Path(file_name).name, 'message': message}))
        return SimpleNamespace(message='Successfully submitted to ' + competition, ref=n)
