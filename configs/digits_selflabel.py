r"""SCAN's self-labeling stage after CDC on scikit-learn's 8x8 digits.

  python -m cdcjax.main --config=configs/digits_cdc.py --workdir=/tmp/digits_cdc
  python -m cdcjax.main --config=configs/digits_selflabel.py \
      --config.init_from=/tmp/digits_cdc --workdir=/tmp/digits_selflabel

Starts from a trained CDC workdir (init_from); confident (> 0.99) samples of the un-augmented view label the augmented view; class-balanced cross-entropy; Adam 1e-4, wd 1e-4, 50 epochs.
Same data, backbone, optimiser and budget as configs/digits_cdc.py (see its
docstring); only the method differs. Not measured at this budget; measure
with python -m cdcjax.bench train --config=configs/digits_selflabel.py --seeds=0,1,2.
"""

from cdcjax import recipes


def get_config(arg: str | None = None):
  return recipes.set_method(recipes.digits(arg), 'selflabel', arg)
