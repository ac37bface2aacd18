r"""Method 'cc' on CIFAR-10 (shared .npz, 32x32 colour): train on the train split,
evaluate on the 10,000 test images.

  export CDCJAX_DATA_DIR=../shared/datasets   # holds cifar10.npz
  python -m cdcjax.main --config=configs/cifar10_cc.py --workdir=/tmp/cifar10_cc

Contrastive Clustering's loss (tau_I 0.5, tau_C 1.0) on the CDC recipe's backbone,
augmentation and optimiser, so the comparison isolates the loss. CC's own protocol trains and
evaluates on train+test: add --config.data.train_split=all --config.data.eval_split=all (paper:
ACC 0.790 / NMI 0.705 / ARI 0.637 with ResNet-34 at 224 pixels, 1000 epochs).

Accelerator recipe (ResNet-18, batch 512, SGD 0.06, 1200 epochs; see
cdcjax.recipes.cifar10); not measured by cdcjax yet: no result is claimed.
Tiny variant for smoke tests: configs/cifar10_cc.py:tiny.
"""

from cdcjax import recipes


def get_config(arg: str | None = None):
  return recipes.set_method(recipes.cifar10(arg), 'cc', arg)
