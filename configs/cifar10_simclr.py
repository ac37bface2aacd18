r"""Method 'simclr' on CIFAR-10 (shared .npz, 32x32 colour): train on the train split,
evaluate on the 10,000 test images.

  export CDCJAX_DATA_DIR=../shared/datasets   # holds cifar10.npz
  python -m cdcjax.main --config=configs/cifar10_simclr.py --workdir=/tmp/cifar10_simclr

Instance-only contrastive baseline (NT-Xent, tau 0.5) on the CDC recipe, clustered by
k-means on backbone features.

Accelerator recipe (ResNet-18, batch 512, SGD 0.06, 1200 epochs; see
cdcjax.recipes.cifar10); not measured by cdcjax yet: no result is claimed.
Tiny variant for smoke tests: configs/cifar10_simclr.py:tiny.
"""

from cdcjax import recipes


def get_config(arg: str | None = None):
  return recipes.set_method(recipes.cifar10(arg), 'simclr', arg)
