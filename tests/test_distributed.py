"""Two CPU processes under torchrun (gloo) train with lessonkit's Learner + DDP; compare with one process that sees the
same global batches: identical weights on both ranks, every validation item counted once, matching loss curves."""
import os, subprocess, sys
from pathlib import Path
from types import SimpleNamespace
import pytest, torch, torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset, Sampler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ddp_common import digits, make_model, torchrun_cmd, SEED, BS_PER_RANK, WORLD
from lessonkit.core import set_seed
from lessonkit.learner import Learner

class GlobalBatches(Sampler):
    "Single-process batches equal to the union of what DistributedSampler hands each rank, epoch by epoch."
    def __init__(self, n, bs, world, seed): self.n, self.bs, self.world, self.seed, self.epoch = n, bs, world, seed, 0
    def set_epoch(self, e): self.epoch = e
    def __iter__(self):
        perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch)).tolist()
        shards = [perm[r::self.world] for r in range(self.world)]
        for k in range(0, len(shards[0]), self.bs): yield sum((s[k:k + self.bs] for s in shards), [])
    def __len__(self): return -(-(self.n // self.world) // self.bs)

@pytest.fixture(scope='module')
def ddp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('ddp')
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    cmd = [*torchrun_cmd(WORLD), str(Path(__file__).parent/'ddp_worker.py'), str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    return out, r.stdout, [torch.load(out/f'rank{i}.pt', weights_only=True) for i in range(WORLD)]

def test_ranks_identical(ddp_run):
    _, _, res = ddp_run
    for k, v in res[0]['weights'].items(): assert torch.equal(v, res[1]['weights'][k]), k

def test_validation_counts_every_item_once(ddp_run):
    _, _, res = ddp_run
    (_, _), (Xv, yv) = digits()
    for r in res:
        assert len(r['val_y']) == len(yv) and torch.equal(r['val_y'], yv)   # all 397 items, in the original order

def test_schedule_counts_batches_per_rank(ddp_run):
    _, _, res = ddp_run
    assert res[0]['n_batches'] == 20 and len(res[0]['lrs']) == 2 * 20   # 700 items per rank / 35

def test_only_rank0_prints(ddp_run):
    out, stdout, _ = ddp_run
    assert stdout.count('trn_loss') == 1 and (out/'models'/'ddp.pth').exists()

def test_matches_single_process(ddp_run):
    _, _, res = ddp_run
    (Xt, yt), (Xv, yv) = digits()
    set_seed(SEED)
    model = make_model()
    sampler = GlobalBatches(len(Xt), BS_PER_RANK, WORLD, SEED)
    data = SimpleNamespace(trn_dl=DataLoader(TensorDataset(Xt, yt), batch_sampler=sampler),
                           val_dl=DataLoader(TensorDataset(Xv, yv), 50), test_dl=None, path=Path('.'), classes=list(range(10)))
    learn = Learner(data, model, crit=F.nll_loss, layer_groups=[model[:2], model[2:]])
    learn.fit(0.1, 2, cycle_len=1, quiet=True)
    single = torch.tensor(learn.sched.raw_losses)
    both = (torch.tensor(res[0]['losses']) + torch.tensor(res[1]['losses'])) / 2
    torch.testing.assert_close(both, single, rtol=1e-4, atol=1e-5)
    for k, v in model.state_dict().items(): torch.testing.assert_close(res[0]['weights'][k], v, rtol=1e-4, atol=1e-5)
    assert abs(res[0]['val_loss'] - learn.val_loss) < 1e-4
