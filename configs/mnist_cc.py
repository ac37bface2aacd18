r"""Method 'cc' on MNIST (shared .npz, resized to 16x16): train on the train
split, evaluate on the test split.

  export CDCJAX_DATA_DIR=../shared/datasets   # holds mnist.npz
  python -m cdcjax.main --config=configs/mnist_cc.py --workdir=/tmp/mnist_cc

Tiny variant: configs/mnist_cc.py:tiny. ResNet-10 width 0.25, small stem,
batch 256, Adam 1e-3, 2,000 steps (cdcjax.config_common.handwritten).
Measured (README, commit 487ed10, seed 0, 2-core CPU, beside other jobs):
test ACC 0.9624, NMI 0.9159, ARI 0.9189 (cluster head); k-means on backbone
features 0.9655; linear probe 0.9880. Seeds 1 and 2 (--config.seed=S, commit
81dea49): 0.9664 and 0.9621, so over 3 seeds ACC 0.9636 +- 0.0020, NMI
0.9185 +- 0.0038, ARI 0.9217 +- 0.0042. The best method on MNIST at this
budget (CDC 0.9496 +- 0.0010).
"""

from cdcjax import config_common


def get_config(arg: str | None = None):
  return config_common.set_method(config_common.handwritten('mnist', arg), 'cc',
                                  arg)
