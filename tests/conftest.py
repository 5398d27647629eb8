"Test-session settings: the suite runs on two pytest workers (see the Makefile), so each worker uses one CPU thread."
import os
if os.environ.get('PYTEST_XDIST_WORKER'):
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    import torch
    torch.set_num_threads(1)
os.environ.setdefault('MPLBACKEND', 'Agg')
