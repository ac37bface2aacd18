r"""The instance-only contrastive baseline (SimCLR-style) on MNIST (16x16): train
split, scored on the test split by k-means on the backbone's features.

  export CDCJAX_DATA_DIR=../shared/datasets   # holds mnist.npz
  python -m cdcjax.main --config=configs/mnist_simclr.py --workdir=/tmp/mnist_simclr

Same data, backbone, optimiser and 4,000 steps as configs/mnist_cdc.py.

Measured (--config.seed=S, seeds 0 / 1 / 2, 2-core x86_64 CPU, beside other
runs): test ACC 0.9604 / 0.9619 / 0.9612, 0.9612 +- 0.0006 (NMI 0.9196 +-
0.0011, ARI 0.9165 +- 0.0015).
"""

from cdcjax import recipes


def get_config(arg: str | None = None):
  return recipes.set_method(recipes.handwritten('mnist', arg), 'simclr',
                                  arg)
