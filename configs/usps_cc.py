r"""Method 'cc' on USPS (shared .npz, resized to 16x16): train on the train
split, evaluate on the test split.

  export CDCJAX_DATA_DIR=../shared/datasets   # holds usps.npz
  python -m cdcjax.main --config=configs/usps_cc.py --workdir=/tmp/usps_cc

Tiny variant: configs/usps_cc.py:tiny. ResNet-10 width 0.25, small stem,
batch 256, Adam 1e-3, 2,000 steps (cdcjax.config_common.handwritten).
Measured (README, commit b1455f1, seed 0, 2-core CPU, alone, 16.1 min for the
2,000 steps): test ACC 0.8430, NMI 0.8221, ARI 0.7454 (k-means on backbone
features 0.8032); CDC 0.8426 on the same budget. Zeros split, fives without
a cluster, as for CDC.
"""

from cdcjax import config_common


def get_config(arg: str | None = None):
  return config_common.set_method(config_common.handwritten('usps', arg), 'cc',
                                  arg)
