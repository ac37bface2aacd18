"""The Colab notebooks (launch/colab/) run top to bottom through a real
Jupyter kernel with their tiny switch on. Run with `-m e2e` (CI runs it as
its second command)."""

import os

import nbformat
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLAB = os.path.join(REPO_ROOT, 'launch', 'colab')
FIXTURE = os.path.join(REPO_ROOT, '..', 'shared', 'fixtures',
                       'moco_v3_r50_random.pth.tar')

pytestmark = pytest.mark.e2e


def _run(name, tmp_path, settings: dict):
  """Executes the notebook with `settings` replacing the assignments of its
  settings cell; returns the executed notebook."""
  nbclient = pytest.importorskip('nbclient')
  nb = nbformat.read(os.path.join(COLAB, f'{name}.ipynb'), as_version=4)
  cell = next(c for c in nb.cells if c.cell_type == 'code' and
              c.source.startswith('# @title Settings'))
  lines = cell.source.splitlines()
  for key, value in settings.items():
    at = [i for i, line in enumerate(lines) if line.startswith(f'{key} = ')]
    assert len(at) == 1, f'{name}: no single {key} setting'
    lines[at[0]] = f'{key} = {value!r}'
  cell.source = '\n'.join(lines)
  nbclient.NotebookClient(nb, timeout=900, kernel_name='python3',
                          resources={'metadata': {'path': str(tmp_path)}}
                          ).execute()
  for c in nb.cells:  # execute() raises on an error; every cell ran.
    if c.cell_type == 'code':
      assert c.execution_count is not None
  return nb


def _images_shown(nb) -> int:
  return sum('image/png' in output.get('data', {})
             for c in nb.cells if c.cell_type == 'code' for output in c.outputs)


def test_quickstart_notebook(tmp_path):
  workdir = str(tmp_path / 'digits')
  nb = _run('quickstart', tmp_path, {'TINY': True, 'WORKDIR': workdir})
  for name in ('index.html', 'sizes.png', 'confusion.png', 'map_labels.png',
               'curves.png'):
    assert os.path.exists(os.path.join(workdir, 'report', name)), name
  assert _images_shown(nb) >= 8  # 5 figures and 3 cluster grids.


def test_cluster_your_images_notebook(tmp_path):
  out = str(tmp_path / 'out')
  nb = _run('cluster_your_images', tmp_path, {'TINY': True, 'OUT': out})
  assert os.path.exists(os.path.join(out, 'assignments.csv'))
  assert len(os.listdir(os.path.join(out, 'by_cluster'))) == 3
  assert os.path.exists(os.path.join(out, 'report', 'index.html'))
  assert _images_shown(nb) >= 5  # sizes, map, curves and 3 grids... at least.


@pytest.mark.skipif(not os.path.exists(FIXTURE),
                    reason='../shared/fixtures/moco_v3_r50_random.pth.tar is '
                    'not here')
def test_imagenet_recipe_notebook(tmp_path):
  pytest.importorskip('tensorflow_datasets')
  workdir = str(tmp_path / 'imagenet')
  nb = _run('imagenet_recipe', tmp_path, {
      'TINY': True, 'MOCK_DATA': True, 'WORKDIR': workdir,
      'CHECKPOINT': os.path.abspath(FIXTURE)})
  assert os.path.isdir(os.path.join(workdir, 'backbone', 'variables'))
  assert os.path.exists(os.path.join(workdir, 'run', 'report', 'index.html'))
  assert _images_shown(nb) >= 5
