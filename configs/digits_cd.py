r"""Contrastive Disentangling (CD) on scikit-learn's 8x8 digits.

  python -m cdcjax.main --config=configs/digits_cd.py --workdir=/tmp/digits_cd

Instance NT-Xent (tau 0.5) + feature-column contrast (tau 1.0) - normalised entropy; no K in training, clustered by k-means on the feature predictions.
Same data, backbone, optimiser and budget as configs/digits_cdc.py (see its
docstring); only the method differs. Not measured at this budget; measure
with python -m cdcjax.bench train --config=configs/digits_cd.py --seeds=0,1,2.
"""

from cdcjax import recipes


def get_config(arg: str | None = None):
  return recipes.set_method(recipes.digits(arg), 'cd', arg)
