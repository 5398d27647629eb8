"Write README.md from nbs/index.ipynb (markdown cells as they are, code cells as fenced blocks)."
import json, pathlib
root = pathlib.Path(__file__).resolve().parent.parent
nb = json.loads((root/'nbs'/'index.ipynb').read_text())
parts = ['<!-- README.md is generated from nbs/index.ipynb by `make readme`: edit the notebook, not this file. -->']
for c in nb['cells']:
    src = ''.join(c['source']).strip('\n')
    if not src or src.startswith('#| hide'): continue
    parts.append(src if c['cell_type'] == 'markdown' else f'```python\n{src}\n```')
(root/'README.md').write_text('\n\n'.join(parts) + '\n')
