r"""the instance-only contrastive baseline (SimCLR-style) on scikit-learn's 8x8 digits.

  python -m cdcjax.main --config=configs/digits_simclr.py --workdir=/tmp/digits_simclr

NT-Xent (tau 0.5) on the instance head; clustered by k-means on backbone features.
Same data, backbone, optimiser and budget as configs/digits_cdc.py (see its
docstring); only the method differs. Not measured at this budget; measure
with python -m cdcjax.bench train --config=configs/digits_simclr.py --seeds=0,1,2.
"""

from cdcjax import recipes


def get_config(arg: str | None = None):
  return recipes.set_method(recipes.digits(arg), 'simclr', arg)
