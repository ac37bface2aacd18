r"""CDC on USPS (shared .npz, 16x16): train on the train split, score the test split.

  export CDCJAX_DATA_DIR=../shared/datasets   # holds usps.npz
  python -m cdcjax.main --config=configs/usps_cdc.py --workdir=/tmp/usps_cdc

ResNet-10 width 0.25, small stem, batch 256, Adam 1e-3, 2,000 steps, lambda
ramped over the first 70 %, tau 0.2 (cdcjax.recipes.handwritten).

Measured (--config.seed=S, seeds 0 / 1 / 2, 2-core x86_64 CPU, jax 0.10.2,
two runs side by side): test ACC 0.8426 / 0.7554 / 0.7180, 0.772 +- 0.052
(NMI 0.755 +- 0.019, ARI 0.659 +- 0.037). Every seed splits the zeros (17.9 %
of the test split) over two clusters; equal-size clusters cannot score above
0.8896 here. CC (configs/usps_cc.py) and CD (configs/usps_cd.py) do better.
"""

from cdcjax import recipes


def get_config(arg: str | None = None):
  return recipes.set_method(recipes.handwritten('usps', arg), 'cdc',
                                  arg)
