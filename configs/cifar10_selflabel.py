r"""Method 'selflabel' on CIFAR-10 (shared .npz, 32x32 colour): train on the train split,
evaluate on the 10,000 test images.

  export CDCJAX_DATA_DIR=../shared/datasets   # holds cifar10.npz
  python -m cdcjax.main --config=configs/cifar10_selflabel.py \
      --workdir=/tmp/cifar10_selflabel --config.init_from=/tmp/cifar10_cdc

SCAN's self-labeling stage from a finished CDC run (init_from): Adam 1e-4, wd 1e-4,
threshold 0.99, class-balanced, batch 1024 (SCAN's 1000, rounded so it splits
over any power-of-two device count), 200 epochs; init_from names the
workdir of a finished configs/cifar10_cdc.py run.
The strong view is SCAN's (aug.recipe='scan_strong': flip, RandAugment with 4
random ops, Cutout); the weak view is the un-augmented image.

Accelerator recipe (ResNet-18; see cdcjax.recipes.cifar10); not measured by cdcjax yet: no result is claimed.
Tiny variant for smoke tests: configs/cifar10_selflabel.py:tiny.
"""

from cdcjax import recipes


def get_config(arg: str | None = None):
  c = recipes.set_method(recipes.cifar10(arg), 'selflabel', arg)
  if arg != 'tiny':
    c.num_epochs = 200  # SCAN's CIFAR schedule (its batch is 1000).
    c.batch_size = 1024
  c.aug.recipe = 'scan_strong'
  return c
