r"""Method 'cd' on USPS (shared .npz, resized to 16x16): train on the train
split, evaluate on the test split.

  export CDCJAX_DATA_DIR=../shared/datasets   # holds usps.npz
  python -m cdcjax.main --config=configs/usps_cd.py --workdir=/tmp/usps_cd

Tiny variant: configs/usps_cd.py:tiny. ResNet-10 width 0.25, small stem,
batch 256, Adam 1e-3 (cdcjax.config_common.handwritten).
Measured (README; commit 0690d38's code, seed 0, 2,000 steps, 2-core CPU,
beside one other run, 22.7 min; "--config.evaluators=('kmeans_head',
'kmeans_features')"): test ACC 0.9517, NMI 0.8965, ARI 0.9110 (k-means on
the feature predictions); k-means on backbone features 0.7823. CDC gets
0.8426 on the same data and budget.
"""

from cdcjax import config_common


def get_config(arg: str | None = None):
  return config_common.set_method(config_common.handwritten('usps', arg), 'cd',
                                  arg)
