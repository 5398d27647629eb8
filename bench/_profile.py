"""Where a fit's time goes, the same way for both libraries: cProfile over the whole fit, grouped into the parts of a
training loop, plus torch.profiler's self CPU time of the tensor copies (casts in and out of autocast, channels-last
conversions). Imported by lessonkit_task.py and fastai_task.py with `--profile`; imports neither library.

A part's seconds are the cumulative time of the outermost function that does it (for data, the iterator that hands
the loop its next batch: what the loop waits for); "loop and callbacks" is the fit's wall time less every other part.
cProfile slows Python code down (not the tensor kernels), so the parts are for comparing the two libraries measured
the same way, not for adding up to an unprofiled run's time."""
from __future__ import annotations

import cProfile
import pstats
import time

# part -> (file path fragment, function name); the largest cumulative time among the matches counts (nested matches,
# such as fastai's batch iterator calling torch's, are not added twice)
PARTS = {
    'data (waiting for the next batch)': [('torch/utils/data/dataloader.py', '__next__'), ('fastai/data/load.py', '__iter__')],
    'forward (training and validation)': [('torch/nn/modules/module.py', '_call_impl')],
    'backward': [('torch/_tensor.py', 'backward')],
    'optimizer step': [('torch/optim/optimizer.py', 'wrapper'), ('fastai/optimizer.py', 'step')],
    'metrics and loss outside the forward': [('lessonkit/metrics.py', '*'), ('fastai/metrics.py', '*'), ('fastai/learner.py', 'accumulate')],
    'live view and progress bars': [('lessonkit/core.py', 'add_row'), ('lessonkit/core.py', 'progress'), ('fastprogress/', '*')],
}
COPY_OPS = ('aten::_to_copy', 'aten::copy_', 'aten::clone', 'aten::contiguous')


def _parts(stats: pstats.Stats) -> dict:
    out = {}
    for part, pats in PARTS.items():
        best, tot = 0.0, 0.0
        for (fn, _line, name), (_cc, _nc, tt, ct, _callers) in stats.stats.items():
            fn = fn.replace('\\', '/')
            for frag, fname in pats:
                if frag not in fn: continue
                if fname == '*': tot += tt               # every function of that file: its own time
                elif fname == name: best = max(best, ct)
        out[part] = best + tot
    return out


def profile_fit(fit) -> dict:
    "Run `fit()` under cProfile and torch.profiler; the seconds of each part, of the tensor copies, and of the whole fit."
    import torch
    from torch.profiler import profile, ProfilerActivity
    pr = cProfile.Profile()
    with profile(activities=[ProfilerActivity.CPU]) as tp:
        t0 = time.perf_counter()
        pr.enable()
        try: fit()
        finally: pr.disable()
        wall = time.perf_counter() - t0
    parts = _parts(pstats.Stats(pr))
    parts['loop and callbacks (the rest)'] = max(0.0, wall - sum(parts.values()))
    copies = {e.key: e.self_cpu_time_total / 1e6 for e in tp.key_averages() if e.key in COPY_OPS}
    ops = sorted(((e.key, e.self_cpu_time_total / 1e6) for e in tp.key_averages()), key=lambda kv: -kv[1])[:8]
    return dict(wall_s=wall, parts=parts, copies_s=sum(copies.values()), copies=copies, top_ops=ops,
                torch=torch.__version__)
