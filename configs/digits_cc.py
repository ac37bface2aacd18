r"""Contrastive Clustering (CC) on scikit-learn's 8x8 digits.

  python -m cdcjax.main --config=configs/digits_cc.py --workdir=/tmp/digits_cc

Instance NT-Xent (tau 0.5) + cluster-column contrast (tau 1.0) + marginal
entropy, argmax of the cluster head. Same data, backbone, optimiser and budget
as configs/digits_cdc.py; only the method differs.

Measured (`python -m cdcjax.bench train --config=configs/digits_cc.py
--seeds=S`, code of b935f5a, 2-core x86_64 CPU, jax 0.10.2, beside other
runs, 320-470 s): seeds 0 / 1 / 2: ACC 0.8731 / 0.9009 / 0.9560, 0.9100 +-
0.0345 (NMI 0.8994 +- 0.0241, ARI 0.8514 +- 0.0416). CDC (digits_cdc.py)
0.8549 +- 0.0700.
"""

from cdcjax import recipes


def get_config(arg: str | None = None):
  return recipes.set_method(recipes.digits(arg), 'cc', arg)
