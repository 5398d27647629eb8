"Shared by the tests that launch torchrun (test_distributed.py, test_train.py) and ddp_worker.py: the command line, data and model."
import socket, sys
import torch, torch.nn as nn
from sklearn.datasets import load_digits

SEED, BS_PER_RANK, WORLD = 7, 35, 2

def digits():
    "1,400 training and 397 validation real 8x8 digits, as float tensors."
    X, y = load_digits(return_X_y=True)
    X, y = torch.tensor(X, dtype=torch.float32) / 16, torch.tensor(y)
    idx = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))
    return (X[idx[:1400]], y[idx[:1400]]), (X[idx[1400:]], y[idx[1400:]])

def make_model():
    # no BatchNorm: its statistics are per process under DDP, so only a BN-free model matches one process exactly
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10), nn.LogSoftmax(1))

def torchrun_cmd(nproc: int = WORLD) -> list[str]:
    "The start of a torchrun command line: `nproc` local processes, rendezvous on a free port of 127.0.0.1."
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    return [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', str(nproc), '--master_addr', '127.0.0.1',
            '--master_port', str(port)]
