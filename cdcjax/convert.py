r"""Converts PyTorch ResNet-50 checkpoints (MoCo v3, MoCo v2, torchvision) to an
Orbax checkpoint of Flax variables.

  python -m cdcjax.convert --from=moco_v3 r-50-1000ep.pth.tar --out=DIR

DIR receives `variables/` (an Orbax checkpoint of {'backbone', 'projector',
'predictor'}, each {'params', 'batch_stats'}; projector and predictor where the
source has them) and `source.json` (where it came from, which parts, shapes).
The file is read without torch (cdcjax/torch_checkpoint.py). Every source key
must be used and every Flax variable filled: the first missing or unexpected
key, or a shape mismatch (with both shapes), is an error.

Layouts:
  moco_v3      module.base_encoder.* (fc = projector: Linear 2048-4096, BN,
               ReLU, Linear 4096-256, BN without affine) and module.predictor.*
               (Linear 256-4096, BN, ReLU, Linear 4096-256); the
               module.momentum_encoder.* copy is ignored.
  moco_v2      module.encoder_q.* (fc = Linear 2048-2048 + bias, ReLU, Linear
               2048-128 + bias); module.encoder_k.* and the queue are ignored.
  torchvision  a plain resnet50 state_dict (fc, the classifier, is ignored).
"""

import json
import os
import sys

from absl import app
from absl import flags
import jax
import numpy as np

from cdcjax import models
from cdcjax import torch_checkpoint

SOURCES = ('moco_v3', 'moco_v2', 'torchvision')

# Per layout: backbone key prefix, ignored key prefixes, and heads as
# (name, key prefix, MLPHead fields).
LAYOUTS = {
    'moco_v3': dict(
        backbone='module.base_encoder.',
        ignore=('module.momentum_encoder.',),
        heads=(('projector', 'module.base_encoder.fc.',
                dict(hidden_dims=(4096,), out_dim=256, use_bn=True,
                     out_bias=False, out_bn=True, out_bn_affine=False)),
               ('predictor', 'module.predictor.',
                dict(hidden_dims=(4096,), out_dim=256, use_bn=True,
                     out_bias=False, out_bn=False)))),
    'moco_v2': dict(
        backbone='module.encoder_q.',
        ignore=('module.encoder_k.', 'queue'),
        heads=(('projector', 'module.encoder_q.fc.',
                dict(hidden_dims=(2048,), out_dim=128, use_bn=False,
                     out_bias=True, out_bn=False)),)),
    'torchvision': dict(backbone='', ignore=('fc.',), heads=()),
}


class ConversionError(ValueError):
  """The checkpoint does not match the layout it was converted as."""


def backbone_module():
  return models.make_backbone('resnet50', 1.0, 'imagenet')


def head_module(fields):
  return models.MLPHead(**fields)


def _conv(w):  # OIHW -> HWIO.
  return np.transpose(w, (2, 3, 1, 0))


def _dense(w):  # [out, in] -> [in, out].
  return np.transpose(w, (1, 0))


def _backbone_key(path: tuple[str, ...]) -> tuple[str, str]:
  """(torch key without prefix, kind) for a Flax backbone variable path such
  as ('layer1_0', 'downsample_bn', 'scale')."""
  *modules, leaf = path
  torch_modules = []
  for m in modules:
    if m.startswith('layer'):
      stage, block = m[len('layer'):].split('_')
      torch_modules += [f'layer{stage}', block]
    elif m == 'downsample_conv':
      torch_modules += ['downsample', '0']
    elif m == 'downsample_bn':
      torch_modules += ['downsample', '1']
    else:
      torch_modules.append(m)
  return '.'.join(torch_modules), leaf


def _head_key(path: tuple[str, ...], use_bn: bool) -> tuple[str, str]:
  """MLPHead fc{i}/bn{i} -> torch nn.Sequential index (Linear, BN, ReLU per
  hidden layer with BN; Linear, ReLU without)."""
  module, leaf = path
  i = int(module[2:])
  stride = 3 if use_bn else 2
  index = stride * i + (1 if module.startswith('bn') else 0)
  return str(index), leaf


_TORCH_LEAF = {('params', 'kernel'): 'weight', ('params', 'bias'): 'bias',
               ('params', 'scale'): 'weight',
               ('batch_stats', 'mean'): 'running_mean',
               ('batch_stats', 'var'): 'running_var'}


def _fill(expected: dict, state_dict: dict, prefix: str, key_fn, used: set,
          source: str) -> dict:
  """Flax variables shaped like `expected`, read from state_dict."""
  out = {}
  for collection in ('params', 'batch_stats'):
    flat = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(
        expected.get(collection, {}))[0]:
      names = tuple(p.key for p in path)
      module, flax_leaf = key_fn(names)
      key = f'{prefix}{module}.{_TORCH_LEAF[(collection, flax_leaf)]}'
      if key not in state_dict:
        raise ConversionError(
            f'{source}: missing key {key!r} (for Flax {collection}/'
            f'{"/".join(names)}); is this a {source} checkpoint?')
      value = np.asarray(state_dict[key], np.float32)
      if flax_leaf == 'kernel':
        value = _conv(value) if value.ndim == 4 else _dense(value)
      if value.shape != tuple(leaf.shape):
        raise ConversionError(
            f'{source}: {key!r} has shape {tuple(state_dict[key].shape)} '
            f'(as Flax {value.shape}); the Flax ResNet-50 needs '
            f'{tuple(leaf.shape)}')
      used.add(key)
      flat[names] = value
    if flat:
      tree = {}
      for names, value in flat.items():
        node = tree
        for n in names[:-1]:
          node = node.setdefault(n, {})
        node[names[-1]] = value
      out[collection] = tree
  return out


def _expected(module, input_shape):
  return jax.eval_shape(lambda: module.init(
      jax.random.PRNGKey(0), np.zeros(input_shape, np.float32), train=False))


def convert_state_dict(state_dict: dict, source: str) -> dict:
  """{'backbone': vars, <head>: vars...} in Flax layout, float32."""
  if source not in LAYOUTS:
    raise ValueError(f'--from={source!r}; allowed: {SOURCES}')
  layout = LAYOUTS[source]
  used = set()
  result = {'backbone': _fill(
      _expected(backbone_module(), (1, 32, 32, 3)), state_dict,
      layout['backbone'], _backbone_key, used, source)}
  for name, prefix, fields in layout['heads']:
    in_dim = {'projector': 2048, 'predictor': 256}[name]
    result[name] = _fill(
        _expected(head_module(fields), (2, in_dim)), state_dict, prefix,
        lambda p, bn=fields['use_bn']: _head_key(p, bn), used, source)
  ignored = tuple(layout['ignore'])
  unexpected = [k for k in state_dict if k not in used and
                not k.endswith('num_batches_tracked') and
                not k.startswith(ignored)]
  if unexpected:
    raise ConversionError(
        f'{source}: {len(unexpected)} unexpected keys (first: '
        f'{unexpected[0]!r}); is this a {source} ResNet-50 checkpoint?')
  return result


def state_dict_of(checkpoint) -> dict:
  if isinstance(checkpoint, dict) and 'state_dict' in checkpoint:
    checkpoint = checkpoint['state_dict']
  if not isinstance(checkpoint, dict):
    raise ConversionError('the checkpoint holds no state_dict')
  return checkpoint


def save(variables: dict, out: str, info: dict, overwrite: bool) -> None:
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  target = os.path.abspath(os.path.join(out, 'variables'))
  if os.path.exists(target) and not overwrite:
    raise ConversionError(f'{out} already holds a converted checkpoint; '
                          'pass --overwrite to replace it')
  os.makedirs(out, exist_ok=True)
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(target, variables, force=overwrite)
    checkpointer.wait_until_finished()
  with open(os.path.join(out, 'source.json'), 'w') as f:
    json.dump(info, f, indent=2)


def restore(directory: str) -> dict:
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  path = os.path.abspath(os.path.join(directory, 'variables'))
  if not os.path.exists(path):
    raise FileNotFoundError(f'{directory} holds no converted checkpoint '
                            '(no variables/)')
  with ocp.StandardCheckpointer() as checkpointer:
    return checkpointer.restore(path)


def _define_flags():
  # Defined only when run as a program: importing this module (tests, other
  # tools with their own --out) must not register flags.
  flags.DEFINE_enum('from', None, SOURCES, 'Layout of the checkpoint.')
  flags.DEFINE_string('out', None, 'Output directory.')
  flags.DEFINE_bool('overwrite', False,
                    'Replace a converted checkpoint in --out.')


def main(argv):
  source, out = flags.FLAGS['from'].value, flags.FLAGS.out
  overwrite = flags.FLAGS.overwrite
  if len(argv) != 2 or not source or not out:
    sys.exit('usage: python -m cdcjax.convert --from={moco_v3,moco_v2,'
             'torchvision} IN.pth.tar --out=DIR [--overwrite]')
  path = argv[1]
  try:
    if os.path.exists(os.path.join(out, 'variables')) and (
        not overwrite):
      raise ConversionError(f'{out} already holds a converted '
                            'checkpoint; pass --overwrite to replace it')
    checkpoint = torch_checkpoint.load(path)
    state_dict = state_dict_of(checkpoint)
    dtypes = sorted({str(np.asarray(v).dtype) for v in state_dict.values()})
    variables = convert_state_dict(state_dict, source)
    info = {'source': os.path.abspath(path), 'layout': source,
            'source_dtypes': dtypes, 'parts': sorted(variables),
            'epoch': checkpoint.get('epoch') if isinstance(checkpoint, dict)
                     else None,
            'arch': checkpoint.get('arch') if isinstance(checkpoint, dict)
                    else None}
    save(variables, out, info, overwrite)
  except (ConversionError, torch_checkpoint.NotATorchCheckpoint,
          FileNotFoundError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  print(f'converted {path} ({source}; parts {", ".join(sorted(variables))}'
        f'; source dtypes {", ".join(dtypes)}) to {out}')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
