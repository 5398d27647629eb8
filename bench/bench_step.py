"""One resnet18 training step (forward, loss, backward; bs 32, 64 px, 10 classes) in float32 vs with bfloat16 autocast
and channels-last, the two paths a Learner takes on the CPU: on this CPU as it is, and with oneDNN (the library behind
PyTorch's CPU convolutions) capped at AVX2 by ONEDNN_MAX_CPU_ISA=AVX2, which stands in for a CPU without native
bfloat16 (an estimate: such a CPU runs other kernels too, and at another speed). Each setting runs in a process of
its own (the variable must be set before PyTorch starts), the two paths in back-to-back pairs.

    .venv/bin/python bench/bench_step.py [--quick]
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
for p in (str(REPO), str(BENCH_DIR)):
    if p not in sys.path: sys.path.insert(0, p)

from _util import make_row, spread, time_pair  # noqa: E402


def measure(repeats: int) -> dict:
    "In this process: seconds per step of each path, and the pair ratios (bf16 / fp32)."
    import torch, torchvision
    import torch.nn.functional as F
    torch.manual_seed(0)
    m = torchvision.models.resnet18(num_classes=10)
    x, y = torch.randn(32, 3, 64, 64), torch.randint(0, 10, (32,))
    def step(bf16):
        mm = m.to(memory_format=torch.channels_last if bf16 else torch.contiguous_format)
        xx = x.contiguous(memory_format=torch.channels_last) if bf16 else x
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16): out = mm(xx)
        F.cross_entropy(out.float(), y).backward()
        m.zero_grad(set_to_none=True)
    b, f = time_pair(lambda: step(True), lambda: step(False), repeats=repeats, warmup=2)
    return dict(bf16=b['median'], fp32=f['median'], ratio=b['ratio'], ratios=b['ratios'], threads=torch.get_num_threads(),
                isa=str(torch.backends.cpu.get_cpu_capability()))


def run(quick: bool = False) -> list[dict]:
    from lessonkit.core import cpu_bf16_native
    rows = []
    for cap in (None, 'AVX2'):
        env = dict(os.environ)
        if cap: env['ONEDNN_MAX_CPU_ISA'] = cap
        else: env.pop('ONEDNN_MAX_CPU_ISA', None)
        r = subprocess.run([sys.executable, __file__, '--child', str(3 if quick else 8)], capture_output=True, text=True,
                           env=env, cwd=str(REPO), timeout=1800)
        res = json.loads([l for l in r.stdout.splitlines() if l.startswith('{')][-1])
        where = (f'oneDNN capped at AVX2 (ONEDNN_MAX_CPU_ISA=AVX2), standing in for a CPU without native bfloat16'
                 if cap else f"this CPU as it is ({'native bfloat16' if cpu_bf16_native() else 'no native bfloat16'})")
        rows.append(make_row(f'training step bf16 vs fp32{", oneDNN capped at AVX2" if cap else ""}',
                             f'resnet18 forward + loss + backward, bs 32, 64 px, 10 classes; bfloat16 autocast + channels-last '
                             f'vs float32; {where}; {res["threads"]} torch thread(s); median of back-to-back pairs',
                             res['bf16'], 's/step', reference=f"fp32: {res['fp32']:.3g} s/step", ratio=res['ratio'], goal=None,
                             note=f"pair ratios {spread(res['ratios'])}"))
    return rows


if __name__ == '__main__':
    if '--child' in sys.argv: print(json.dumps(measure(int(sys.argv[sys.argv.index('--child') + 1]))))
    else: print(json.dumps(run(quick='--quick' in sys.argv), indent=1, default=str))
