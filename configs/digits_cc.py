r"""Contrastive Clustering (CC) on scikit-learn's 8x8 digits.

  python -m cdcjax.main --config=configs/digits_cc.py --workdir=/tmp/digits_cc

Instance NT-Xent (tau 0.5) + cluster-column contrast (tau 1.0) + marginal entropy, argmax of the cluster head.
Same data, backbone, optimiser and budget as configs/digits_cdc.py (see its
docstring); only the method differs. Measured results: README, "Methods on
digits".
"""

from cdcjax import config_common


def get_config(arg: str | None = None):
  return config_common.set_method(config_common.digits(arg), 'cc', arg)
