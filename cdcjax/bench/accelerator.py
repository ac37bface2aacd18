"""One-shot accelerator measurement, written to one JSON file.

  export CDCJAX_DATA_DIR=../shared/datasets   # holds cifar10.npz
  python -m cdcjax.bench accelerator --out=/tmp/accelerator.json
  launch/measure_gpu.sh /tmp/accelerator.json  # the same, on a GPU machine

At most about 8 minutes on one GPU, in this order (the file is rewritten after
each part, so a run cut short keeps what it measured):
1. the ImageNet recipe's head-training step (frozen ResNet-50, 224 pixels,
   batch 256) in bfloat16 and in float32;
2. the CIFAR-10 CDC train step (ResNet-18, batch 512, the config's bf16);
3. a CIFAR-10 CDC training run of the config's recipe, as many steps as fit
   in --budget_s at the step rate of part 2, then the test-split evaluation
   (cluster head and k-means on the features). Its ACC after a few hundred
   steps is not the paper's 1200-epoch result; it shows the run works and
   its speed end to end (input pipeline, checkpoint and evaluation included).
4. the CIFAR-10 step against the same step in PyTorch (bench step
   --against=torch, batch 256, the config's bf16), where torch is installed;
5. the evaluators' k-means at ImageNet's kmeans_head size (50,000 x 1,000
   into 1,000 clusters, 10 inits) on the device (scikit-learn not run).
--tiny runs the same parts on the configs' tiny variants (tests, CPUs), the
ImageNet one with a small frozen ResNet-10 instead of ResNet-50.
"""

import json
import os
import platform
import tempfile
import time

import jax

from cdcjax.bench import step as bench_step
from cdcjax import config_validation
from cdcjax import train

IMAGENET = 'configs/imagenet_cdc.py'
CIFAR10 = 'configs/cifar10_cdc.py'


def _write(path: str, result: dict) -> None:
  with open(path, 'w') as f:
    json.dump(result, f, indent=2)


def measure(out: str, budget_s: float = 240.0, tiny: bool = False,
            steps: int = 10, cifar10_path: str = '') -> dict:
  suffix = ':tiny' if tiny else ''
  result = {
      'devices': f'{jax.device_count()} x {jax.devices()[0].device_kind}',
      'platform': jax.devices()[0].platform, 'jax': jax.__version__,
      'host': f'{platform.machine()}, {os.cpu_count()} cores',
      'tiny': tiny, 'steps': {}}
  _write(out, result)
  # Tiny: a small frozen backbone instead of ResNet-50 (same code path).
  batch = (['model.backbone=resnet10', 'model.width=0.125']
           if tiny else ['batch_size=256'])
  for dtype in ('bfloat16', 'float32'):
    result['steps'][f'imagenet_heads_{dtype}'] = bench_step.bench_step(
        IMAGENET + suffix, [*batch, f'model.compute_dtype={dtype}'],
        steps=steps)
    _write(out, result)
  cifar_overrides = [] if tiny else ['batch_size=512']
  if cifar10_path:
    cifar_overrides.append(f'data.path={cifar10_path}')
  cifar_step = bench_step.bench_step(CIFAR10 + suffix, cifar_overrides,
                                     steps=steps)
  result['steps']['cifar10_cdc'] = cifar_step
  _write(out, result)

  config = bench_step.load_config(CIFAR10 + suffix, cifar_overrides)
  num_steps = 2 if tiny else max(
      1, int(budget_s * cifar_step['steps_per_sec']))
  config.total_steps = num_steps
  config.checkpoint_every_steps = num_steps
  config.log_every_steps = max(1, num_steps // 10)
  config.eval_every_steps = 0
  config.evaluators = ('cluster_head', 'kmeans_features')
  config.data.num_threads = max(2, (os.cpu_count() or 2) - 2)
  config_validation.validate(config, jax.device_count())
  train.check_inputs(config)
  with tempfile.TemporaryDirectory(prefix='cdcjax_accelerator_') as workdir:
    start = time.perf_counter()
    evaluation = train.train_and_evaluate(config, workdir)
    wall = time.perf_counter() - start
  result['cifar10_run'] = {
      'config': CIFAR10 + suffix, 'overrides': cifar_overrides,
      'total_steps': num_steps, 'global_batch': config.batch_size,
      'epochs': num_steps * config.batch_size / 50000, 'wall_s': wall,
      'images_per_sec': num_steps * config.batch_size / wall,
      **{k: evaluation[k] for k in ('acc', 'nmi', 'ari', 'num_examples')},
      'evaluation': evaluation}
  _write(out, result)
  print(f"CIFAR-10 CDC, {num_steps} steps in {wall:.0f} s: ACC "
        f"{evaluation['acc']:.4f} NMI {evaluation['nmi']:.4f} ARI "
        f"{evaluation['ari']:.4f}", flush=True)

  try:
    import torch  # pylint: disable=g-import-not-at-top,unused-import
    import torchvision  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError as e:
    result['cifar10_against_torch'] = (
        f"not measured: {e.name} is not installed (pip install -e '.[bench]')")
    print(f"PyTorch side by side: {result['cifar10_against_torch']}",
          flush=True)
  else:
    torch_overrides = (['model.width=1.0', 'batch_size=8'] if tiny
                       else ['batch_size=256'])
    result['cifar10_against_torch'] = bench_step.bench_step(
        CIFAR10 + suffix, torch_overrides, steps=steps, against='torch')
  _write(out, result)

  from cdcjax.bench import kmeans as bench_kmeans  # pylint: disable=g-import-not-at-top
  shape = (2000, 64, 50) if tiny else (50000, 1000, 1000)
  result['kmeans_imagenet_head'] = bench_kmeans.bench_kmeans(
      *shape, std=10.0, seeds=[0], sklearn_inits=0)
  _write(out, result)
  print(f'written to {out}', flush=True)
  return result
