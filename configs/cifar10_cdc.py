r"""Method 'cdc' on CIFAR-10 (shared .npz, 32x32 colour): train on the train split,
evaluate on the 10,000 test images.

  export CDCJAX_DATA_DIR=../shared/datasets   # holds cifar10.npz
  python -m cdcjax.main --config=configs/cifar10_cdc.py --workdir=/tmp/cifar10_cdc

CDC (the paper's recipe). Paper, CIFAR-10 test split, ResNet-18, 1200 epochs: ACC 83.0
(Table VI, full model, before self-labeling); with self-labeling 89.0 ± 0.3 / NMI 80.6 / ARI 78.4.

Accelerator recipe (ResNet-18, batch 512, SGD 0.06, 1200 epochs; see
cdcjax.recipes.cifar10); not measured by cdcjax yet: no result is claimed.
Computes in bfloat16 (model.compute_dtype). Compiled for TPU on a CPU
(python -m cdcjax.aot --config=configs/cifar10_cdc.py --topology=v5e:4x4): the
train step fits in 0.25 GB per v5e chip, memory-bound at 4.3 ms per step on
the roofline (f32: 0.55 GB, 9.2 ms); README, "Accelerators".
Tiny variant for smoke tests: configs/cifar10_cdc.py:tiny.
"""

from cdcjax import recipes


def get_config(arg: str | None = None):
  return recipes.set_method(recipes.cifar10(arg), 'cdc', arg)
