r"""CDC on scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes).

  python -m cdcjax.main --config=configs/digits_cdc.py --workdir=/tmp/digits_cdc

Trains and scores on all 1,797 images (digits has no split). ResNet-10 (one
block per stage) at width 0.25 with the small-image stem, MLP heads (256
hidden, s of 64 dims), batch 256, 200 epochs (1,400 steps), Adam 1e-3 with
warm-up and cosine; tau 0.2, tau_c 0.1, lambda 1 ramped from 0 over the first
70 % of the steps, swapped Sinkhorn targets, eps 0.05, 3 iterations.

Measured (`python -m cdcjax.bench train --config=configs/digits_cdc.py
--seeds=0,1,2`, 2-core x86_64 CPU, jax 0.10.2, commit e9de480, one run at a
time beside other work): ACC 0.7618 / 0.9304 / 0.8726, 0.8549 +- 0.0700 (NMI
0.8559 +- 0.0313, ARI 0.7739 +- 0.0671). At commit 0033739: 0.6745 / 0.8520
/ 0.8765. Digits results move with code changes and between machines about
as much as between seeds. Each of issue 31's four choices flipped alone (same
command, --override=...): README, "CDC's switches".
"""

from cdcjax import recipes


def get_config(arg: str | None = None):
  return recipes.set_method(recipes.digits(arg), 'cdc', arg)
