"""Run one lesson notebook top to bottom with another seed, for bench_precision.py; print one JSON line: the metric the
lesson recorded (record_result), seconds, and how many of its asserts did not hold (printed instead of raised).

    python bench/lesson_run.py nbs/lessons/lesson1-dogscats.ipynb --seed 1    # LESSONKIT_PRECISION picks the path
"""
import argparse, json, os, re, sys, tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / '.ci'))
from nbrun import run_nb                                 # noqa: E402
from full_check import soften_asserts, QUALITY_NOTE      # noqa: E402

SEED_LINES = [(re.compile(r'\bset_seed\(42\)'), 'set_seed({})'), (re.compile(r'^(\s*SEED\s*=\s*)42\b', re.M), r'\g<1>{}')]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('notebook'); ap.add_argument('--seed', type=int, default=42)
    a = ap.parse_args()
    fn = Path(a.notebook).resolve()
    replaced = []

    def edit(cell):
        for pat, rep in SEED_LINES:
            cell.source, n = pat.subn(rep.format(a.seed), cell.source)
            replaced.append(n)
        soften_asserts(cell)

    fd, results = tempfile.mkstemp(suffix='.jsonl'); os.close(fd)
    os.environ['LESSONKIT_RESULTS'] = results
    out = Path(tempfile.mkdtemp()) / fn.name
    ok, dt, err = run_nb(fn, [], save_to=out, test=False, edit=edit)
    if not ok: sys.stderr.write(err + '\n'); sys.exit(1)
    if a.seed != 42 and not sum(replaced): sys.exit(f'{fn.name}: no set_seed(42) or SEED = 42 line to put seed {a.seed} in')
    got = [json.loads(l) for l in Path(results).read_text().splitlines() if l.strip()]
    Path(results).unlink()
    nb = json.loads(out.read_text())
    notes = sum(''.join(o.get('text', '')).count(QUALITY_NOTE) for c in nb['cells'] if c['cell_type'] == 'code'
                for o in c.get('outputs', []))
    r = got[-1] if got else {}
    print(json.dumps(dict(lesson=fn.stem, seed=a.seed, precision=os.environ.get('LESSONKIT_PRECISION', 'auto'),
                          metric=r.get('metric'), value=r.get('value'), seconds=dt, notes=notes, seed_lines=sum(replaced),
                          executed=str(out))))


if __name__ == '__main__':
    main()
