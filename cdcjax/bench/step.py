"""Training-step throughput of a config on this machine's devices.

  python -m cdcjax.bench step --config=configs/imagenet_cdc.py:tiny
  python -m cdcjax.bench step --config=configs/imagenet_cdc.py \
      --override=batch_size=256 --peak_tflops=989   # e.g. one H100, bf16 dense

Builds the config's Trainer, feeds a fixed random batch of the config's
image shape (so the input pipeline is not measured; `bench input` does
that), compiles, runs `warmup` steps, then times `steps` steps. Reports
steps/s, images/s (global batch per step), the step's FLOPs from XLA's cost
analysis, the achieved FLOP/s, and, given --peak_tflops, the fraction of the
peak. With a frozen backbone this is the head-training step of the ImageNet
recipe (backbone forward in inference mode, heads forward and backward).
--against=torch also builds the same step in PyTorch (cdcjax/bench/
torch_step.py) and times both, alternately, on the same batch.
"""

import ast
import importlib.util
import time

import jax
import numpy as np

from cdcjax import data
from cdcjax import train


def load_config(spec: str, overrides=()):
  """'path.py[:arg]' plus 'field.sub=value' overrides (Python literals)."""
  path, _, arg = spec.partition(':')
  module_spec = importlib.util.spec_from_file_location('bench_config', path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  config = module.get_config(arg or None)
  for override in overrides:
    field, _, text = override.partition('=')
    try:
      value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      value = text
    config.update_from_flattened_dict({field: value})
  return config


def bench_step(spec: str, overrides=(), steps: int = 10, warmup: int = 2,
               peak_tflops: float = 0.0, against: str = '',
               rounds: int = 3) -> dict:
  config = load_config(spec, overrides)
  if against not in ('', 'torch'):
    raise ValueError(f"--against={against!r}; allowed: 'torch' or nothing")
  if against:
    from cdcjax.bench import torch_step  # pylint: disable=g-import-not-at-top
    torch_step._check(config)  # pylint: disable=protected-access
  shape = data.input_shape(config)
  mesh = train.make_mesh()
  trainer = train.Trainer(config, mesh, shape, num_examples=10**7)
  rng = np.random.default_rng(0)
  local = config.batch_size // jax.process_count()
  batch = {v: rng.uniform(size=(local, *shape)).astype(np.float32)
           for v in ('view_a', 'view_b')}
  global_batch = trainer.to_global(batch)
  compiled = trainer.train_step.lower(trainer.state, global_batch).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops = float(cost.get('flops', 0.0)) if cost else 0.0
  for _ in range(warmup):
    jax.block_until_ready(trainer.step(batch))
  start = time.perf_counter()
  for _ in range(steps):
    metrics = trainer.step(batch)
  jax.block_until_ready(metrics)
  seconds = (time.perf_counter() - start) / steps
  result = {
      'config': spec, 'overrides': list(overrides),
      'devices': f'{mesh.size} x {jax.devices()[0].device_kind}',
      'global_batch': config.batch_size, 'image_shape': list(shape),
      'frozen_backbone': bool(config.model.freeze_backbone),
      'steps_per_sec': 1 / seconds,
      'images_per_sec': config.batch_size / seconds,
      'flops_per_step': flops,
      'achieved_tflops': flops / seconds / 1e12,
  }
  if peak_tflops:
    result['fraction_of_peak'] = result['achieved_tflops'] / peak_tflops
  if against:
    torch_run, torch_forward, torch_device = torch_step.torch_step_fn(config,
                                                                      batch)
    ours, theirs = torch_step.loss_agreement(config)
    result.update(torch_device=str(torch_device), loss_cdcjax=ours,
                  loss_torch=theirs)
    views = [global_batch[v] for v in ('view_a', 'view_b')]
    jax_forward = lambda: jax.block_until_ready(
        [trainer.embed_step(trainer.state, v) for v in views])
    result.update(torch_step.compare(
        {'step': (lambda: jax.block_until_ready(trainer.step(batch)),
                  torch_run),
         'forward': (jax_forward, torch_forward)},
        config.batch_size, steps, warmup, rounds))
  print(', '.join(f'{k} {v:.4g}' if isinstance(v, float) else f'{k} {v}'
                  for k, v in result.items() if not isinstance(v, dict)),
        flush=True)
  if against:
    for name in ('step', 'forward'):
      r = result[name]
      print(f"{name}: cdcjax {r['cdcjax_images_per_sec']:.1f} images/s, "
            f"PyTorch {r['torch_images_per_sec']:.1f} images/s on "
            f"{result['torch_device']} (medians of {rounds} alternating "
            f"rounds of {steps}): cdcjax / PyTorch = "
            f"{r['cdcjax_over_torch']:.2f}", flush=True)
    print(f"the loss on the same head outputs: cdcjax "
          f"{result['loss_cdcjax']:.6f}, PyTorch {result['loss_torch']:.6f}",
          flush=True)
  return result
