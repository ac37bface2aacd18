r"""Contrastive Clustering (CC) on scikit-learn's 8x8 digits.

  python -m cdcjax.main --config=configs/digits_cc.py --workdir=/tmp/digits_cc

Instance NT-Xent (tau 0.5) + cluster-column contrast (tau 1.0) + marginal
entropy, argmax of the cluster head. Same data, backbone, optimiser and budget
as configs/digits_cdc.py; only the method differs.

Measured (`python -m cdcjax.bench train --config=configs/digits_cc.py
--seeds=S`, 2-core x86_64 CPU, jax 0.10.2, beside other runs, 582 / 692 s):
seeds 0 / 2: ACC 0.8703 / 0.9516, 0.9109 +- 0.0407 (NMI 0.8981, ARI 0.8548);
seed 1 did not run (the environment's install broke). CDC 0.801 +- 0.089.
"""

from cdcjax import recipes


def get_config(arg: str | None = None):
  return recipes.set_method(recipes.digits(arg), 'cc', arg)
