r"""Contrastive Disentangling (CD) on USPS (16x16): train split, scored on the test split.

  export CDCJAX_DATA_DIR=../shared/datasets   # holds usps.npz
  python -m cdcjax.main --config=configs/usps_cd.py --workdir=/tmp/usps_cd

Same backbone, augmentation, optimiser and 2,000 steps as configs/usps_cdc.py;
reported: k-means on the feature predictions.

Measured (--config.seed=S, seeds 0 / 1 / 2, 2-core x86_64 CPU, jax 0.10.2):
test ACC 0.9517 / 0.9567 / 0.9507, 0.953 +- 0.003 (seed 0: NMI 0.8965, ARI
0.9110); one-to-one partitions. Stage 1 of configs/usps_cdc_on_cd.py.
"""

from cdcjax import recipes


def get_config(arg: str | None = None):
  return recipes.set_method(recipes.handwritten('usps', arg), 'cd',
                                  arg)
