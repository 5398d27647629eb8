"""Stand-in ImageNet weights: random weights saved under the exact names torchvision's weights API looks for, so that
`pretrained=True` takes the same code path as with the real files.

torchvision (0.29, torchvision/models/_api.py) loads `Weights.get_state_dict()` -> `torch.hub.load_state_dict_from_url(url,
check_hash=True)`, which reads `$TORCH_HOME/hub/checkpoints/<basename of url>` when that file exists and downloads it
only when it does not. The hash prefix in the name (resnet34-b627a593.pth) is checked only after a download, so a file
put there is loaded as it is. These weights are random (a fresh model's), NOT ImageNet's: nothing learned from them
means anything.
"""
from __future__ import annotations
from pathlib import Path
import torch

def checkpoint_path(arch, torch_home: Path) -> Path:
    "Where torchvision looks for `arch`'s ImageNet weights under `torch_home`."
    return Path(torch_home)/'hub'/'checkpoints'/Path(arch.weights.url).name

def write_weights(archs, torch_home: Path, seed: int = 0) -> list[Path]:
    "Save random weights for each lessonkit `Arch` in `archs` under `torch_home`; returns the files."
    out = []
    for a in archs:
        p = checkpoint_path(a, torch_home)
        if not p.is_file():
            torch.manual_seed(seed)
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_suffix('.tmp'); torch.save(a.builder(weights=None).state_dict(), tmp); tmp.replace(p)
        out.append(p)
    return out
