r"""CDC's heads on the frozen backbone of a SimCLR-style run, USPS (16x16):
train on the train split, evaluate on the test split.

Two stages: an instance-only contrastive run, then CDC's heads on its frozen
backbone (its instance head is loaded, the cluster head starts fresh; the CDC
paper trains its ImageNet heads the same way on a frozen MoCo backbone):

  export CDCJAX_DATA_DIR=../shared/datasets   # holds usps.npz
  python -m cdcjax.main --config=configs/usps_simclr.py --workdir=/tmp/usps_simclr
  python -m cdcjax.main --config=configs/usps_cdc_on_simclr.py \
      --config.init_from=/tmp/usps_simclr --workdir=/tmp/usps_cdc_on_simclr

Tiny variant (CI): configs/usps_cdc_on_simclr.py:tiny. As configs/usps_cdc.py
(2,000 steps, 3 Sinkhorn iterations, tau 0.2), except: the backbone is frozen
and the equipartition is relaxed (loss.sinkhorn_balance = 0.5), because USPS's
classes are not of equal size (zeros are 16 % of the train split): equal-size
clusters cannot score above 0.8896 on its test split.

Expected (test split; seeds 0, 1, 2 for both stages, `--config.seed=S`; 2-core
x86_64 CPU, jax 0.10.2, several runs sharing it): ACC 0.9367 / 0.7668 /
0.7648, mean 0.823 +- 0.080 (README, "CDC's heads on a frozen SimCLR
backbone"): no better on the mean than CDC from scratch (configs/usps_cdc.py,
0.8426, seed 0), and below the 0.93 aimed for except on seed 0; seeds 1 and 2
split the zeros over two clusters. With exact equipartition
(--config.loss.sinkhorn_balance=1.0) seed 0's stage gave 0.8784.
"""

from cdcjax import recipes


def get_config(arg: str | None = None):
  c = recipes.cdc_on_frozen_backbone(
      recipes.handwritten('usps', arg), arg)
  # Unbalanced Sinkhorn: with the frozen backbone's partition already right,
  # the zeros' cluster may grow to the zeros' share (0.9367 against 0.8784
  # for exact equipartition, seed 0; seeds 1 and 2 split the zeros anyway).
  c.loss.sinkhorn_balance = 0.5
  return c
