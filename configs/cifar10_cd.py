r"""Method 'cd' on CIFAR-10 (shared .npz, 32x32 colour): train on the train split,
evaluate on the 10,000 test images.

  export CDCJAX_DATA_DIR=../shared/datasets   # holds cifar10.npz
  python -m cdcjax.main --config=configs/cifar10_cd.py --workdir=/tmp/cifar10_cd

Contrastive Disentangling's loss (tau_I 0.5, tau_F 1.0, F = 128) on the CDC recipe's
backbone, augmentation and optimiser; evaluated by k-means on the predictor outputs. CD's own
protocol uses train+test: add --config.data.train_split=all --config.data.eval_split=all.

Accelerator recipe (ResNet-18, batch 512, SGD 0.06, 1200 epochs; see
cdcjax.recipes.cifar10); not measured by cdcjax yet: no result is claimed.
Tiny variant for smoke tests: configs/cifar10_cd.py:tiny.
"""

from cdcjax import recipes


def get_config(arg: str | None = None):
  return recipes.set_method(recipes.cifar10(arg), 'cd', arg)
