"""Run every lesson notebook top to bottom, save the executed copies under out/, and print a table:
lesson, the metric it reached, seconds taken. With LESSONKIT_FULL=1 the cells flagged `full` run too (full data, GPU)."""
import json, os, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from nbrun import run_nb, ROOT

def main():
    out = ROOT/'out'; out.mkdir(exist_ok=True)
    results = out/'results.jsonl'
    if results.exists(): results.unlink()
    os.environ['LESSONKIT_RESULTS'] = str(results)
    full = os.environ.get('LESSONKIT_FULL', '').lower() in ('1', 'true', 'yes', 'on')
    force = ['full'] if full else []
    lessons = sorted((ROOT/'nbs'/'lessons').glob('*.ipynb'))
    rows, failed = [], []
    for fn in lessons:
        print(f'running {fn.relative_to(ROOT)} ...', flush=True)
        ok, dt, err = run_nb(fn, force, save_to=out/fn.name, test=False)
        if not ok: failed.append(fn.name); sys.stderr.write(err + '\n')
        rows.append((fn.stem, ok, dt))
    got = {}
    if results.exists():
        for line in results.read_text().splitlines():
            r = json.loads(line); got[r['lesson']] = r
    print(f"\n{'lesson':<32} {'metric':<34} {'seconds':>8}")
    print('-' * 76)
    for name, ok, dt in rows:
        r = got.get(name)
        m = f"{r['metric']} = {r['value']:.4f}" if r else ('FAILED' if not ok else '-')
        print(f'{name:<32} {m:<34} {dt:>8.1f}')
    print(f"\nexecuted notebooks: {out.relative_to(ROOT)}/ ({'full data' if full else 'sample data'})")
    if failed: print(f'failed: {", ".join(failed)}'); sys.exit(1)

if __name__ == '__main__': main()
