r"""Method 'selflabel' on USPS (shared .npz, resized to 16x16): train on the train
split, evaluate on the test split.

  export CDCJAX_DATA_DIR=../shared/datasets   # holds usps.npz
  python -m cdcjax.main --config=configs/usps_cdc.py --workdir=/tmp/usps_cdc
  python -m cdcjax.main --config=configs/usps_selflabel.py \
      --config.init_from=/tmp/usps_cdc --workdir=/tmp/usps_selflabel

Tiny variant: configs/usps_selflabel.py:tiny. ResNet-10 width 0.25, small stem,
batch 256, Adam 1e-3 (cdcjax.recipes.handwritten).
Not yet measured: no result is claimed for this config.
"""

from cdcjax import recipes


def get_config(arg: str | None = None):
  return recipes.set_method(recipes.handwritten('usps', arg), 'selflabel',
                                  arg)
