"""Run under torchrun by test_distributed.py: trains a small digits model with lessonkit's Learner under DDP (gloo, CPU)
and writes, per rank, the final weights, the per-batch losses, and the gathered validation predictions."""
import sys, json
from pathlib import Path
from types import SimpleNamespace
import torch, torch.nn as nn, torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ddp_common import digits, make_model, SEED, BS_PER_RANK
from lessonkit.core import set_seed
from lessonkit.learner import Learner
from lessonkit.distributed import to_distributed

def main(out):
    (Xt, yt), (Xv, yv) = digits()
    set_seed(SEED)
    model = make_model()
    data = SimpleNamespace(trn_dl=DataLoader(TensorDataset(Xt, yt), BS_PER_RANK, shuffle=True), val_dl=DataLoader(TensorDataset(Xv, yv), 50),
                           test_dl=None, path=Path(out), classes=list(range(10)))
    learn = to_distributed(Learner(data, model, crit=F.nll_loss, layer_groups=[model[:2], model[2:]]), seed=SEED)
    learn.fit(0.1, 2, cycle_len=1)
    rank = torch.distributed.get_rank()
    out_preds, y = learn.get_preds(learn.data.val_dl)
    torch.save({'weights': model.state_dict(), 'losses': learn.sched.raw_losses, 'lrs': learn.sched.lrs,
                'val_y': y, 'val_out': out_preds, 'n_batches': len(learn.data.trn_dl), 'val_loss': learn.val_loss},
               Path(out)/f'rank{rank}.pt')
    learn.save('ddp')   # rank 0 writes; every rank waits, then any rank can load
    learn.load('ddp')

if __name__ == '__main__': main(sys.argv[1])
