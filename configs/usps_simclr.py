r"""Method 'simclr' on USPS (shared .npz, resized to 16x16): train on the train
split, evaluate on the test split.

  export CDCJAX_DATA_DIR=../shared/datasets   # holds usps.npz
  python -m cdcjax.main --config=configs/usps_simclr.py --workdir=/tmp/usps_simclr

Tiny variant: configs/usps_simclr.py:tiny. ResNet-10 width 0.25, small stem,
batch 256, Adam 1e-3 (cdcjax.recipes.handwritten).
Measured (seed 0, 2,000 steps, 2-core x86_64 CPU, beside one other run, 22.6
min): test ACC 0.7633, NMI 0.7981, ARI 0.7070 (k-means on backbone features).
"""

from cdcjax import recipes


def get_config(arg: str | None = None):
  return recipes.set_method(recipes.handwritten('usps', arg), 'simclr',
                                  arg)
