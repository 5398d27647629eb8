"Methods added to a class after its definition are fastcore @patch methods that nbdev's index places on their class."
import ast, importlib, inspect, re
from pathlib import Path
import pytest
from lessonkit._modidx import d as modidx

ROOT = Path(__file__).resolve().parent.parent
PKG = sorted(p for p in (ROOT/'lessonkit').glob('*.py') if not p.name.startswith('_'))

def _class_attr_assignments(path):
    "Module-level statements `SomeClass.name = ...` (the style @patch replaces)."
    out = []
    for node in ast.parse(path.read_text()).body:
        if not isinstance(node, ast.Assign): continue
        for t in node.targets:
            for e in (t.elts if isinstance(t, ast.Tuple) else [t]):
                if isinstance(e, ast.Attribute) and isinstance(e.value, ast.Name) and e.value.id[:1].isupper():
                    out.append(f'{path.name}:{node.lineno}: {e.value.id}.{e.attr}')
    return out

def test_no_methods_assigned_to_classes():
    found = [a for p in PKG for a in _class_attr_assignments(p)]
    assert found == [], 'use @patch instead of assigning to a class:\n' + '\n'.join(found)

PATCHED = [('learner', 'Learner', ['fit', 'lr_find', 'freeze', 'unfreeze', 'freeze_to', 'bn_freeze', 'predict', 'predict_dl',
                                   'predict_array', 'save', 'load', 'summary', 'to_fp16', 'to_fp32', 'get_preds', 'validate']),
           ('conv_learner', 'ConvLearner', ['unfreeze', 'freeze_to', 'set_data', 'predict', 'build_feature_data']),
           ('data', 'ImageClassifierData', ['from_paths', 'from_csv', 'from_arrays', 'resize']),
           ('interpret', 'ClassificationInterpretation', ['confusion_matrix', 'plot_confusion_matrix', 'most_confused',
                                                          'most_by_correct', 'plot_most', 'top_losses', 'plot_top_losses']),
           ('column_data', 'ColumnarModelData', ['get_learner'])]

@pytest.mark.parametrize('mod,cls,names', PATCHED, ids=[p[1] for p in PATCHED])
def test_patched_methods_live_on_their_class(mod, cls, names):
    m = importlib.import_module(f'lessonkit.{mod}')
    klass = getattr(m, cls)
    syms = modidx['syms'][f'lessonkit.{mod}']
    for n in names:
        f = inspect.getattr_static(klass, n)
        f = getattr(f, '__func__', None) or getattr(f, 'f', None) or getattr(f, 'fget', None) or f   # classmethod, fastcore's class method, property
        assert f.__qualname__ == f'{cls}.{n}', (cls, n, f.__qualname__)
        assert f'lessonkit.{mod}.{cls}.{n}' in syms, f'nbdev index lacks {cls}.{n}'
        assert f.__module__ == f'lessonkit.{mod}'
        assert f.__doc__, f'{cls}.{n} has no docstring'

def test_patched_names_do_not_leak_into_star_imports():
    import lessonkit.learner as L
    assert 'fit' not in L.__all__ and 'lr_find' not in L.__all__
    ns = {}
    exec('from lessonkit.conv_learner import *', ns)
    assert callable(ns['plot_confusion_matrix'])          # the course's function of (cm, classes) keeps its name
    assert 'cm' in inspect.signature(ns['plot_confusion_matrix']).parameters

def test_precompute_is_a_settable_property():
    from lessonkit.conv_learner import ConvLearner
    p = inspect.getattr_static(ConvLearner, 'precompute')
    assert isinstance(p, property) and p.fset is not None

def test_submission_has_its_own_module():
    import lessonkit.submission as S, lessonkit.interpret as I
    for n in ['SubmissionError', 'ids_from_fnames', 'dogbreeds_submission', 'planet_submission', 'rossmann_submission',
              'check_submission', 'write_submission', 'submit']:
        assert n in S.__all__ and n not in I.__all__, n
        assert getattr(S, n).__module__ == 'lessonkit.submission'
