r"""Method 'cdc' on MNIST (shared .npz, resized to 16x16): train on the train
split, evaluate on the test split.

  export CDCJAX_DATA_DIR=../shared/datasets   # holds mnist.npz
  python -m cdcjax.main --config=configs/mnist_cdc.py --workdir=/tmp/mnist_cdc

Tiny variant: configs/mnist_cdc.py:tiny. ResNet-10 width 0.25, small stem,
batch 256, Adam 1e-3, 2,000 steps, lambda ramped over the first 70 %,
InfoNCE temperature tau = 0.5 (cdcjax.config_common.handwritten).
Measured (README, commit 706a39f with --config.loss.temperature=0.5, seed 0,
2-core CPU, beside another job): test ACC 0.9505, NMI 0.8968, ARI 0.8945
(k-means on backbone features 0.9433); with tau = 0.2 (commit 1ba554c) ACC
0.9205. Below the 0.97 target; ahead of CD (0.9426) and the SimCLR baseline
(0.9416), behind CC (0.9624) on the same budget (README, "Methods on MNIST").
CPU runs are not bit-reproducible, so expect seed-to-seed and run-to-run
spread.
"""

from cdcjax import config_common


def get_config(arg: str | None = None):
  return config_common.set_method(config_common.handwritten('mnist', arg), 'cdc',
                                  arg)
