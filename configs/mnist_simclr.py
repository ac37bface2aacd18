r"""Method 'simclr' on MNIST (shared .npz, resized to 16x16): train on the train
split, evaluate on the test split.

  export CDCJAX_DATA_DIR=../shared/datasets   # holds mnist.npz
  python -m cdcjax.main --config=configs/mnist_simclr.py --workdir=/tmp/mnist_simclr

Tiny variant: configs/mnist_simclr.py:tiny. ResNet-10 width 0.25, small stem,
batch 256, Adam 1e-3, 2,000 steps (cdcjax.config_common.handwritten).
Measured (README, commit 487ed10, seed 0, 2-core CPU, beside other jobs):
test ACC 0.9416, NMI 0.8831, ARI 0.8774 (k-means on backbone features);
k-means on the normalised head output 0.9512; linear probe 0.9871.
"""

from cdcjax import config_common


def get_config(arg: str | None = None):
  return config_common.set_method(config_common.handwritten('mnist', arg), 'simclr',
                                  arg)
