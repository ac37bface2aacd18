r"""Compiles a config's train and eval steps for a TPU slice without one.

  pip install -e '.[tpu]'      # libtpu: the TPU compiler and topologies
  python -m cdcjax.aot --config=configs/cifar10_cdc.py --topology=v5e:4x4
  python -m cdcjax.aot --config=configs/imagenet_cdc.py --topology=v4:4x4x4 \
      --chip_config_name=megacore --config.model.compute_dtype=float32
  python -m cdcjax.aot --kmeans=50000,1000,1000 --topology=v5e:2x2

The trainer's own jitted steps (train.Trainer.train_step and embed_step) are
lowered over a mesh of libtpu's abstract devices for the named topology
(`vX:AxB[xC]`, multi-host slices included) with abstract state and batches
(no array is built), compiled by the TPU compiler, and reported per chip:
HBM for arguments, outputs, temporaries and their sum against the chip's HBM,
FLOPs and bytes accessed per step (XLA's cost analysis), a roofline step time
and images/s from the chip's published peaks, and the collectives in the
compiled HLO with their sizes. The config is validated for the slice's device
count. As MaxText's train_compile.py.

--kmeans=N,D,K instead compiles the evaluators' k-means (cdcjax/kmeans.py:
10 inits, points sharded over the slice) for N points of D dimensions into K
clusters, and reports its memory, and the cost and roofline time of one
k-means++ step (of all inits at once) and one Lloyd iteration.
"""

import collections
import dataclasses
import json
import math
import os
import re
import sys
import time

from absl import app
from absl import flags
from ml_collections import config_flags

# libtpu looks for a TPU VM's metadata at start-up; on another machine that
# is only noise (the topology is given explicitly). Compiling needs no TPU, so
# several processes (tests beside a compile) may load libtpu at once.
os.environ.setdefault('TPU_SKIP_MDS_QUERY', '1')
os.environ.setdefault('ALLOW_MULTIPLE_LIBTPU_LOAD', '1')

import jax  # pylint: disable=g-import-not-at-top

from cdcjax import config_validation  # pylint: disable=g-import-not-at-top
from cdcjax import data
from cdcjax import train

# Published per-chip peaks (Google Cloud TPU system architecture pages):
# HBM GiB, dense bf16 TFLOP/s, HBM GB/s, TensorCores per chip. A device is a
# chip (megacore) or one TensorCore of it (v4 without megacore).
CHIPS = {
    'TPU v4': dict(name='v4', hbm_gib=32, bf16_tflops=275, hbm_gbps=1228,
                   cores=2),
    'TPU v5 lite': dict(name='v5e', hbm_gib=16, bf16_tflops=197,
                        hbm_gbps=819, cores=1),
    'TPU v5': dict(name='v5p', hbm_gib=95, bf16_tflops=459, hbm_gbps=2765,
                   cores=2),
    'TPU v6 lite': dict(name='v6e', hbm_gib=32, bf16_tflops=918,
                        hbm_gbps=1640, cores=1),
}
# Training-set sizes, for the learning-rate schedule's length only (the
# compiled step does not depend on it otherwise).
TRAIN_SIZES = {'digits': 1797, 'mnist': 60000, 'usps': 7291, 'cifar10': 50000,
               'cifar100': 50000, 'stl10': 105000, 'imagenet2012': 1281167}
COLLECTIVES = ('all-reduce', 'all-gather', 'reduce-scatter',
               'collective-permute', 'all-to-all')
_DTYPE_BYTES = {'f32': 4, 'bf16': 2, 'f16': 2, 's32': 4, 'u32': 4, 'f64': 8,
                's64': 8, 'u64': 8, 'pred': 1, 's8': 1, 'u8': 1, 's16': 2,
                'u16': 2}
_SHAPE = re.compile(r'\b(%s)\[([\d,]*)\]' % '|'.join(_DTYPE_BYTES))
_COLLECTIVE_OP = re.compile(r'\s(%s)(-start)?\(' % '|'.join(COLLECTIVES))

def topology_devices(name: str, chip_config_name: str = '') -> list:
  """libtpu's abstract devices of a TPU slice (needs the tpu extra)."""
  from jax.experimental import topologies  # pylint: disable=g-import-not-at-top
  kwargs = {'chip_config_name': chip_config_name} if chip_config_name else {}
  try:
    return list(topologies.get_topology_desc(
        platform='tpu', topology_name=name, **kwargs).devices)
  except Exception as e:  # pylint: disable=broad-except
    chip = f' --chip_config_name={chip_config_name}' if chip_config_name else ''
    detail = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise ValueError(
        f'--topology={name!r}{chip}: libtpu gave no topology ({detail}); '
        "names look like 'v5e:2x2', 'v5p:4x4x4', 'v4:4x4x4' (pip install -e "
        "'.[tpu]' brings libtpu)") from None


def collectives(hlo_text: str) -> dict:
  """Count and result bytes of each collective kind in an HLO module's text.

  An async pair counts once, at its start. An all-reduce inside a computation
  that XLA's TPU backend named 'all-reduce-scatter' (all-reduce then a slice
  of each device's part: its reduce-scatter) is counted as that kind.
  """
  found = collections.defaultdict(lambda: {'count': 0, 'bytes': 0,
                                           'largest': '', 'largest_bytes': -1})
  computation = ''
  for line in hlo_text.splitlines():
    header = re.match(r'\s*(?:ENTRY\s+)?%?([\w.-]+)\s+\(.*\{\s*$', line)
    if header and '=' not in line.split('(')[0]:
      computation = header.group(1)
      continue
    if '=' not in line:
      continue
    rhs = line.split('=', 1)[1]
    op = _COLLECTIVE_OP.search(rhs)
    if not op:
      continue
    kind, is_start = op.group(1), bool(op.group(2))
    shapes = [(t, d) for t, d in _SHAPE.findall(rhs[:op.start()])
              if d or t not in ('u32', 's32')]  # Drop async context scalars.
    if is_start and kind in ('all-gather', 'collective-permute'):
      shapes = shapes[len(shapes) // 2:]  # (operands, results): the results.
    if kind == 'all-reduce' and computation.startswith('all-reduce-scatter'):
      kind = 'all-reduce-scatter'
    size = sum(_DTYPE_BYTES[t] * _numel(dims) for t, dims in shapes)
    entry = found[kind]
    entry['count'] += 1
    entry['bytes'] += size
    if size > entry['largest_bytes']:
      entry['largest_bytes'] = size
      entry['largest'] = (' '.join(f'{t}[{d}]' for t, d in shapes)
                          if len(shapes) <= 2 else
                          f'{len(shapes)} arrays, {_size(size)} together')
  return dict(found)


def _numel(dims: str) -> int:
  n = 1
  for d in filter(None, dims.split(',')):
    n *= int(d)
  return n


def analyse(compiled, chip: dict, device_fraction: float,
            images_per_step: int) -> dict:
  """Per-device memory, cost, roofline and collectives of a compiled step."""
  memory = compiled.memory_analysis()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  hbm = chip['hbm_gib'] * 2**30 * device_fraction
  total = (memory.argument_size_in_bytes + memory.output_size_in_bytes +
           memory.temp_size_in_bytes - memory.alias_size_in_bytes)
  flops, traffic = float(cost.get('flops', 0)), float(
      cost.get('bytes accessed', 0))
  peak_flops = chip['bf16_tflops'] * 1e12 * device_fraction
  peak_bytes = chip['hbm_gbps'] * 1e9 * device_fraction
  compute_s, memory_s = flops / peak_flops, traffic / peak_bytes
  step_s = max(compute_s, memory_s)
  hlo = compiled.as_text()
  return {
      'hlo_module': re.search(r'HloModule\s+([\w.-]+)', hlo).group(1),
      'argument_bytes': memory.argument_size_in_bytes,
      'output_bytes': memory.output_size_in_bytes,
      'temp_bytes': memory.temp_size_in_bytes,
      'alias_bytes': memory.alias_size_in_bytes,
      'total_bytes': total, 'hbm_bytes': hbm, 'fits': total <= hbm,
      'flops': flops, 'bytes_accessed': traffic,
      'compute_s': compute_s, 'memory_s': memory_s,
      'bound': 'compute' if compute_s >= memory_s else 'memory',
      'roofline_step_s': step_s,
      'roofline_images_per_s': images_per_step / step_s if step_s else 0.0,
      'fraction_of_peak': compute_s / step_s if step_s else 0.0,
      'collectives': collectives(hlo),
  }


@dataclasses.dataclass
class AotResult:
  trainer: train.Trainer
  compiled: dict  # 'train_step' / 'embed_step' -> jax.stages.Compiled.
  report: dict


def compile_for_devices(config, devices, num_examples: int = 0,
                        topology: str = '') -> AotResult:
  """Validates `config` for len(devices), builds an abstract Trainer on a
  mesh of `devices` and compiles its train and eval steps."""
  config_validation.validate(config, len(devices))
  kind = devices[0].device_kind
  if kind not in CHIPS:
    raise ValueError(f'device kind {kind!r} has no published peaks here; '
                     f'known: {sorted(CHIPS)}')
  chip = CHIPS[kind]
  device_fraction = getattr(devices[0], 'num_cores', 1) / chip['cores']
  if not num_examples:
    name = config.data.tfds_name if config.data.name == 'tfds' else (
        config.data.name)
    num_examples = TRAIN_SIZES.get(name, 1000 * config.batch_size)
  mesh = train.make_mesh(devices)
  trainer = train.Trainer(config, mesh, data.input_shape(config),
                          num_examples, abstract=True)
  batch, images = trainer.abstract_batches()
  compiled, report = {}, {
      'topology': topology, 'chip': chip['name'], 'device_kind': kind,
      'devices': len(devices),
      'hosts': len({d.process_index for d in devices}),
      'compute_dtype': config.model.compute_dtype,
      'global_batch': config.batch_size,
      'eval_batch': trainer.eval_batch_size,
      'image_shape': list(trainer.image_shape),
      'frozen_backbone': bool(config.model.freeze_backbone)}
  for name, jitted, args, per_step in (
      ('train_step', trainer.train_step, (trainer.state, batch),
       config.batch_size),
      ('embed_step', trainer.embed_step, (trainer.state, images),
       trainer.eval_batch_size)):
    start = time.perf_counter()
    compiled[name] = jitted.lower(*args).compile()
    report[name] = analyse(compiled[name], chip, device_fraction,
                           per_step / len(devices))
    report[name]['roofline_images_per_s'] *= len(devices)  # Whole slice.
    report[name]['compile_s'] = time.perf_counter() - start
  return AotResult(trainer, compiled, report)


def compile_kmeans(devices, points: int, dim: int, clusters: int,
                   n_init: int = 10, topology: str = '') -> dict:
  """Compiles the k-means of `points` x `dim` into `clusters` over a mesh of
  `devices`; memory of the whole, cost of its two repeated steps."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from jax.sharding import NamedSharding  # pylint: disable=g-import-not-at-top
  from jax.sharding import PartitionSpec as P  # pylint: disable=g-import-not-at-top
  from cdcjax import kmeans  # pylint: disable=g-import-not-at-top
  chip = CHIPS[devices[0].device_kind]
  device_fraction = getattr(devices[0], 'num_cores', 1) / chip['cores']
  mesh = train.make_mesh(devices)
  padded = -(-points // len(devices)) * len(devices)
  spec = lambda shape, *axes: jax.ShapeDtypeStruct(
      shape, jnp.float32, sharding=NamedSharding(mesh, P(*axes)))
  x, weights = spec((padded, dim), 'data', None), spec((padded,), 'data')
  key = jax.ShapeDtypeStruct((2,), jnp.uint32,
                             sharding=NamedSharding(mesh, P()))
  report = {'topology': topology, 'chip': chip['name'],
            'devices': len(devices), 'points': points, 'dim': dim,
            'clusters': clusters, 'n_init': n_init}
  start = time.perf_counter()
  whole = kmeans._kmeans.lower(  # pylint: disable=protected-access
      key, x, weights, num_clusters=clusters, n_init=n_init, max_iter=300,
      tol=1e-4).compile()
  report['kmeans'] = analyse(whole, chip, device_fraction, 1)
  report['kmeans']['compile_s'] = time.perf_counter() - start
  trials = 2 + int(math.log(clusters))
  def plus_plus(keys, x, x_sq, weights, closest):
    return jax.vmap(lambda k, c: kmeans.plus_plus_step(
        k, x, x_sq, weights, c, trials))(keys, closest)

  keys = jax.ShapeDtypeStruct((n_init, 2), jnp.uint32,
                              sharding=NamedSharding(mesh, P()))
  closest = spec((n_init, padded), None, 'data')
  compiled = jax.jit(plus_plus).lower(keys, x, spec((padded,), 'data'),
                                      weights, closest).compile()
  report['plus_plus_step'] = analyse(compiled, chip, device_fraction, 1)
  compiled = jax.jit(kmeans.lloyd_iteration).lower(
      x, weights, spec((clusters, dim))).compile()
  report['lloyd_iteration'] = analyse(compiled, chip, device_fraction, 1)
  return report


def format_kmeans_report(report: dict) -> str:
  whole, init, lloyd = (report[k] for k in ('kmeans', 'plus_plus_step',
                                            'lloyd_iteration'))
  init_s = report['clusters'] * init['roofline_step_s']
  lines = [
      f"{report['topology']}: {report['devices']} x {report['chip']}, k-means "
      f"of {report['points']} x {report['dim']} into {report['clusters']} "
      f"clusters, {report['n_init']} inits",
      f"  whole (per chip): HBM {_gb(whole['total_bytes'])} of "
      f"{_gb(whole['hbm_bytes'])} ({'fits' if whole['fits'] else 'DOES NOT FIT'}"
      f"); compiled in {whole['compile_s']:.0f} s"]
  for name, r in (('k-means++ step, all inits', init),
                  ('Lloyd iteration', lloyd)):
    lines.append(
        f"  {name} (per chip): {r['flops']:.3g} FLOPs, "
        f"{r['bytes_accessed']:.3g} bytes; roofline "
        f"{r['roofline_step_s'] * 1e3:.3f} ms ({r['bound']}-bound)")
  lines.append(
      f"  roofline estimate: initialisation {report['clusters']} steps = "
      f"{init_s:.2f} s, then {lloyd['roofline_step_s'] * 1e3:.2f} ms per "
      'Lloyd iteration of each init')
  return '\n'.join(lines)


def _gb(x: float) -> str:
  return f'{x / 1e9:.2f} GB'


def _size(x: float) -> str:
  for unit, scale in (('GB', 1e9), ('MB', 1e6), ('kB', 1e3)):
    if x >= scale:
      return f'{x / scale:.1f} {unit}'
  return f'{x:.0f} B'


def format_report(report: dict) -> str:
  lines = [f"{report['topology']}: {report['devices']} x {report['chip']} "
           f"on {report['hosts']} host(s), {report['compute_dtype']}, global "
           f"batch {report['global_batch']} of {report['image_shape']}"]
  for name in ('train_step', 'embed_step'):
    r = report[name]
    lines.append(
        f"  {name} (per chip): HBM args {_gb(r['argument_bytes'])} + out "
        f"{_gb(r['output_bytes'])} + temp {_gb(r['temp_bytes'])} - aliased "
        f"{_gb(r['alias_bytes'])} = {_gb(r['total_bytes'])} of "
        f"{_gb(r['hbm_bytes'])} ({'fits' if r['fits'] else 'DOES NOT FIT'}); "
        f"{r['flops']:.3g} FLOPs, {r['bytes_accessed']:.3g} bytes; roofline "
        f"{r['compute_s'] * 1e3:.2f} ms compute vs {r['memory_s'] * 1e3:.2f} "
        f"ms memory ({r['bound']}-bound): {r['roofline_images_per_s']:.0f} "
        f"images/s for the slice, {100 * r['fraction_of_peak']:.0f}% of peak "
        f"FLOP/s; compiled in {r['compile_s']:.0f} s")
    for kind, c in sorted(r['collectives'].items()):
      lines.append(f"    {kind}: {c['count']} op(s), {_size(c['bytes'])} "
                   f"(largest {c['largest']})")
  return '\n'.join(lines)


def _define_flags():
  """Flags of the command line, defined only when it runs (other modules
  that import this one, e.g. tests beside cdcjax.bench, define --config too)."""
  global _CONFIG, _TOPOLOGY, _CHIP_CONFIG, _NUM_EXAMPLES, _OUT, _HLO_OUT
  global _KMEANS
  _KMEANS = flags.DEFINE_list(
      'kmeans', None, 'N,D,K: compile the evaluators\' k-means of N points '
      'of D dimensions into K clusters instead of a config\'s steps.')
  _CONFIG = config_flags.DEFINE_config_file(
      'config', None, 'Config file (configs/*.py[:tiny]).', lock_config=True)
  _TOPOLOGY = flags.DEFINE_string(
      'topology', 'v5e:2x2', "libtpu topology name, 'vX:AxB[xC]' (v5e:2x2, "
      'v5e:4x4, v5p:4x4x4, v4:4x4x4, v6e:2x2, ...).')
  _CHIP_CONFIG = flags.DEFINE_string(
      'chip_config_name', '', "libtpu chip config, e.g. 'megacore' for v4 "
      '(one device per chip instead of per TensorCore).')
  _NUM_EXAMPLES = flags.DEFINE_integer(
      'num_examples', 0, 'Training-set size for the schedule (0: known size '
      'of the dataset, else 1,000 batches).')
  _OUT = flags.DEFINE_string('out', None, 'Optional JSON file for the report.')
  _HLO_OUT = flags.DEFINE_string(
      'hlo_out', None, 'Optional file prefix: writes PREFIX.train_step.hlo and '
      'PREFIX.embed_step.hlo (the compiled HLO text).')


def main(argv):
  if len(argv) > 1:
    sys.exit(f'error: unexpected arguments: {" ".join(argv[1:])}')
  if _KMEANS.value:
    try:
      points, dim, clusters = (int(v) for v in _KMEANS.value)
    except ValueError:
      sys.exit(f'error: --kmeans={",".join(_KMEANS.value)}; allowed: three '
               'integers N,D,K')
    try:
      devices = topology_devices(_TOPOLOGY.value, _CHIP_CONFIG.value)
    except ValueError as e:
      sys.exit(f'error: {e}')
    report = compile_kmeans(devices, points, dim, clusters,
                            topology=_TOPOLOGY.value)
    print(format_kmeans_report(report), flush=True)
    if _OUT.value:
      with open(_OUT.value, 'w') as f:
        json.dump(report, f, indent=2)
    return
  if _CONFIG.value is None:
    sys.exit('error: --config (configs/*.py) or --kmeans=N,D,K is required')
  try:
    devices = topology_devices(_TOPOLOGY.value, _CHIP_CONFIG.value)
    result = compile_for_devices(
        _CONFIG.value, devices, _NUM_EXAMPLES.value,
        _TOPOLOGY.value + (f' ({_CHIP_CONFIG.value})'
                           if _CHIP_CONFIG.value else ''))
  except ValueError as e:  # ConfigError included.
    sys.exit(f'error: {e}')
  print(format_report(result.report), flush=True)
  if _HLO_OUT.value:
    for name, compiled in result.compiled.items():
      with open(f'{_HLO_OUT.value}.{name}.hlo', 'w') as f:
        f.write(compiled.as_text())
  if _OUT.value:
    with open(_OUT.value, 'w') as f:
      json.dump(result.report, f, indent=2)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
