r"""Converts PyTorch ResNet-50 checkpoints (MoCo v3 and v2, SwAV, Barlow Twins,
DINO, torchvision, others by prefix) to an Orbax checkpoint of Flax variables.

  python -m cdcjax.convert moco_v2_800ep_pretrain.pth.tar --out=DIR
  python -m cdcjax.convert --from=moco_v3 r-50-1000ep.pth.tar --out=DIR
  python -m cdcjax.convert --prefix=backbone. --ignore=projector.,predictor. byol.ckpt --out=DIR

The layout is recognised from the keys (--from=auto, the default) and
printed; where none fits, one line names the closest layout and its first
missing or unexpected key. DIR receives `variables/` (an Orbax checkpoint of
{'backbone', 'projector', 'predictor'}, each {'params', 'batch_stats'};
projector and predictor where the layout maps them) and `source.json` (where
it came from, layout, parts, dtypes). The file is read without torch
(cdcjax/torch_checkpoint.py). Every source key must be used or ignored by the
layout and every Flax variable filled: the first missing or unexpected key, or
a shape mismatch (with both shapes), is an error.

Layouts (the releases' key names; BN's num_batches_tracked is always ignored):
  moco_v3       module.base_encoder.* (fc = projector: Linear 2048-4096, BN,
                ReLU, Linear 4096-256, BN without affine) and module.predictor.*
                (Linear 256-4096, BN, ReLU, Linear 4096-256); ignored:
                module.momentum_encoder.*.
  moco_v2       module.encoder_q.* (fc = projector: Linear 2048-2048 + bias,
                ReLU, Linear 2048-128 + bias); ignored: module.encoder_k.*,
                module.queue, module.queue_ptr.
  swav          module.* (SwAV's release); ignored: module.projection_head.*,
                module.prototypes.*.
  barlow_twins  module.backbone.* (the training checkpoint.pth, its 'model'
                entry); ignored: module.projector.*, module.bn.*.
  torchvision   a plain resnet50 state_dict: torchvision's supervised weights
                (fc, the classifier, ignored) and the backbone-only releases
                of DINO (dino_resnet50_pretrain.pth) and Barlow Twins
                (resnet50.pth), which have no fc.
  --prefix=P    the torchvision backbone under the prefix P, with --ignore's
                comma-separated prefixes dropped (BYOL-style exports, e.g.
                solo-learn's backbone.* beside projector.*, predictor.*, ...).
"""

import functools
import json
import os
import sys

from absl import app
from absl import flags
import jax
import numpy as np

from cdcjax import models
from cdcjax import torch_checkpoint

# Per layout: backbone key prefix, ignored key prefixes and exact keys, and
# heads as (name, key prefix, MLPHead fields).
LAYOUTS = {
    'moco_v3': dict(
        backbone='module.base_encoder.',
        ignore=('module.momentum_encoder.',), ignore_keys=(),
        heads=(('projector', 'module.base_encoder.fc.',
                dict(hidden_dims=(4096,), out_dim=256, use_bn=True,
                     out_bias=False, out_bn=True, out_bn_affine=False)),
               ('predictor', 'module.predictor.',
                dict(hidden_dims=(4096,), out_dim=256, use_bn=True,
                     out_bias=False, out_bn=False)))),
    'moco_v2': dict(
        backbone='module.encoder_q.',
        ignore=('module.encoder_k.',),
        ignore_keys=('module.queue', 'module.queue_ptr'),
        heads=(('projector', 'module.encoder_q.fc.',
                dict(hidden_dims=(2048,), out_dim=128, use_bn=False,
                     out_bias=True, out_bn=False)),)),
    'swav': dict(
        backbone='module.',
        ignore=('module.projection_head.', 'module.prototypes.'),
        ignore_keys=(), heads=()),
    'barlow_twins': dict(
        backbone='module.backbone.',
        ignore=('module.projector.', 'module.bn.'), ignore_keys=(), heads=()),
    'torchvision': dict(backbone='', ignore=(),
                        ignore_keys=('fc.weight', 'fc.bias'), heads=()),
}
SOURCES = tuple(LAYOUTS)
# Where a checkpoint file keeps its state_dict, if not at the top level:
# 'state_dict' (MoCo, Lightning), 'model' (Barlow Twins' checkpoint.pth),
# 'online_network_state_dict' (BYOL-style exports).
STATE_DICT_ENTRIES = ('state_dict', 'model', 'online_network_state_dict')


def custom_layout(prefix: str, ignore: tuple[str, ...] = ()) -> dict:
  """The torchvision backbone under `prefix`, with `ignore` prefixes dropped
  (--prefix / --ignore)."""
  return dict(backbone=prefix, ignore=tuple(ignore), ignore_keys=(), heads=())


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


def _torch_shape(flax_leaf: str, shape: tuple) -> tuple:
  if flax_leaf != 'kernel':
    return shape
  if len(shape) == 4:  # HWIO -> OIHW.
    return (shape[3], shape[2], shape[0], shape[1])
  return (shape[1], shape[0])


def _expected(module, input_shape):
  return jax.eval_shape(lambda: module.init(
      jax.random.PRNGKey(0), np.zeros(input_shape, np.float32), train=False))


@functools.cache
def _variable_keys(part: str, fields_items: tuple = ()) -> tuple:
  """(collection, Flax path, torch key without prefix, Flax leaf, Flax shape)
  for every variable of the backbone or of a head."""
  if part == 'backbone':
    expected = _expected(backbone_module(), (1, 32, 32, 3))
    key_fn = _backbone_key
  else:
    fields = dict(fields_items)
    in_dim = {'projector': 2048, 'predictor': 256}[part]
    expected = _expected(head_module(fields), (2, in_dim))
    key_fn = functools.partial(_head_key, use_bn=fields['use_bn'])
  rows = []
  for collection in ('params', 'batch_stats'):
    for path, leaf in jax.tree_util.tree_flatten_with_path(
        expected.get(collection, {}))[0]:
      names = tuple(p.key for p in path)
      module, flax_leaf = key_fn(names)
      key = f'{module}.{_TORCH_LEAF[(collection, flax_leaf)]}'
      rows.append((collection, names, key, flax_leaf, tuple(leaf.shape)))
  return tuple(rows)


def _parts(layout: dict):
  """(part name, key prefix, variable rows) for the backbone and each head."""
  yield 'backbone', layout['backbone'], _variable_keys('backbone')
  for name, prefix, fields in layout['heads']:
    yield name, prefix, _variable_keys(name, tuple(sorted(fields.items())))


def required_keys(layout: dict) -> dict[str, tuple]:
  """torch key -> torch shape for every key the layout reads."""
  return {prefix + key: _torch_shape(flax_leaf, shape)
          for _, prefix, rows in _parts(layout)
          for _, _, key, flax_leaf, shape in rows}


def _is_ignored(key: str, layout: dict) -> bool:
  return (key.endswith('num_batches_tracked') or key in layout['ignore_keys']
          or key.startswith(tuple(layout['ignore'])))


def mismatch(state_dict: dict, layout: dict) -> tuple[list, list]:
  """(missing keys, unexpected keys) of state_dict against the layout."""
  required = required_keys(layout)
  missing = [k for k in required if k not in state_dict]
  unexpected = [k for k in state_dict
                if k not in required and not _is_ignored(k, layout)]
  return missing, unexpected


def _first_problem(missing: list, unexpected: list) -> str:
  if missing:
    return f'{len(missing)} missing keys (first: {missing[0]!r})'
  return f'{len(unexpected)} unexpected keys (first: {unexpected[0]!r})'


def detect_layout(state_dict: dict) -> str:
  """The one layout whose keys the state_dict has exactly; otherwise a
  ConversionError naming the closest layout and its first problem."""
  scores = {name: mismatch(state_dict, layout)
            for name, layout in LAYOUTS.items()}
  fitting = [name for name, (m, u) in scores.items() if not m and not u]
  if fitting:
    return fitting[0]
  closest = min(scores, key=lambda n: len(scores[n][0]) + len(scores[n][1]))
  raise ConversionError(
      f'no known ResNet-50 layout fits this checkpoint ({len(state_dict)} '
      f'keys, first {next(iter(state_dict), None)!r}); closest is {closest}: '
      f'{_first_problem(*scores[closest])}. Known layouts: '
      f'{", ".join(SOURCES)}; for another prefix pass --prefix=P '
      '[--ignore=A,B]')


def convert_state_dict(state_dict: dict, source: str | dict) -> dict:
  """{'backbone': vars, <head>: vars...} in Flax layout, float32. `source`:
  a layout name, 'auto', or a layout dict (custom_layout)."""
  if isinstance(source, dict):
    layout, source = source, f'--prefix={source["backbone"]!r}'
  else:
    if source == 'auto':
      source = detect_layout(state_dict)
    if source not in LAYOUTS:
      raise ConversionError(
          f'--from={source!r}; allowed: auto, {", ".join(SOURCES)}')
    layout = LAYOUTS[source]
  missing, unexpected = mismatch(state_dict, layout)
  if missing or unexpected:
    raise ConversionError(f'{source}: {_first_problem(missing, unexpected)}; '
                          f'is this a {source} ResNet-50 checkpoint?')
  result = {}
  for part, prefix, rows in _parts(layout):
    trees = {}
    for collection, names, key, flax_leaf, shape in rows:
      value = np.asarray(state_dict[prefix + key], np.float32)
      if flax_leaf == 'kernel':
        value = _conv(value) if value.ndim == 4 else _dense(value)
      if value.shape != shape:
        raise ConversionError(
            f'{source}: {prefix + key!r} has shape '
            f'{tuple(np.shape(state_dict[prefix + key]))} (as Flax '
            f'{value.shape}); the Flax ResNet-50 needs {shape}')
      node = trees.setdefault(collection, {})
      for n in names[:-1]:
        node = node.setdefault(n, {})
      node[names[-1]] = np.ascontiguousarray(value)
    result[part] = trees
  return result


def state_dict_of(checkpoint) -> dict:
  """The state_dict in a loaded checkpoint: the checkpoint itself, or its
  first STATE_DICT_ENTRIES entry."""
  if isinstance(checkpoint, dict):
    for entry in STATE_DICT_ENTRIES:
      if isinstance(checkpoint.get(entry), dict):
        return checkpoint[entry]
    if checkpoint and all(isinstance(v, (np.ndarray, np.generic))
                          for v in checkpoint.values()):
      return checkpoint
    raise ConversionError(
        'the checkpoint holds no state_dict: its top-level keys are '
        f'{sorted(map(str, checkpoint))[:8]}, none of them '
        f'{"/".join(STATE_DICT_ENTRIES)}, and not all of them are tensors')
  raise ConversionError(
      f'the checkpoint holds a {type(checkpoint).__name__}, not a state_dict')


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
  flags.DEFINE_enum('from', 'auto', ('auto', *SOURCES),
                    'Layout of the checkpoint; auto recognises it.')
  flags.DEFINE_string('prefix', None, 'Instead of --from: the torchvision '
                      'ResNet-50 backbone under this key prefix.')
  flags.DEFINE_list('ignore', [], 'With --prefix: key prefixes to drop.')
  flags.DEFINE_string('out', None, 'Output directory.')
  flags.DEFINE_bool('overwrite', False,
                    'Replace a converted checkpoint in --out.')


USAGE = ('usage: python -m cdcjax.convert [--from=auto|' + '|'.join(SOURCES) +
         ' | --prefix=P [--ignore=A,B]] IN.pth --out=DIR [--overwrite]')


def _layout_from_flags(source: str, prefix, ignore) -> str | dict:
  if prefix is None:
    if ignore:
      raise ConversionError('--ignore needs --prefix (the named layouts '
                            'know what they ignore)')
    return source
  if source != 'auto':
    raise ConversionError(f'--from={source} and --prefix={prefix!r}: pass '
                          'one of them')
  return custom_layout(prefix, tuple(ignore))


def main(argv):
  flag_values = flags.FLAGS
  out, overwrite = flag_values.out, flag_values.overwrite
  if len(argv) != 2 or not out:
    sys.exit(USAGE)
  path = argv[1]
  try:
    layout = _layout_from_flags(flag_values['from'].value, flag_values.prefix,
                                flag_values.ignore)
    if os.path.exists(os.path.join(out, 'variables')) and (
        not overwrite):
      raise ConversionError(f'{out} already holds a converted '
                            'checkpoint; pass --overwrite to replace it')
    checkpoint = torch_checkpoint.load(path)
    state_dict = state_dict_of(checkpoint)
    if layout == 'auto':
      layout = detect_layout(state_dict)
      print(f'layout: {layout} (recognised from its {len(state_dict)} keys)')
    name = layout if isinstance(layout, str) else (
        f'prefix {layout["backbone"]!r}, ignoring {list(layout["ignore"])}')
    dtypes = sorted({str(np.asarray(v).dtype) for v in state_dict.values()})
    variables = convert_state_dict(state_dict, layout)
    info = {'source': os.path.abspath(path), 'layout': name,
            'source_dtypes': dtypes, 'parts': sorted(variables),
            'epoch': checkpoint.get('epoch'), 'arch': checkpoint.get('arch')}
    save(variables, out, info, overwrite)
  except (ConversionError, torch_checkpoint.NotATorchCheckpoint,
          FileNotFoundError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  print(f'converted {path} ({name}; parts {", ".join(sorted(variables))}'
        f'; source dtypes {", ".join(dtypes)}) to {out}')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
