r"""CDC on USPS (shared .npz, 16x16): train on the train split, score the test split.

  export CDCJAX_DATA_DIR=../shared/datasets   # holds usps.npz
  python -m cdcjax.main --config=configs/usps_cdc.py --workdir=/tmp/usps_cdc

ResNet-10 width 0.25, small stem, batch 256, Adam 1e-3, 2,000 steps, lambda
ramped over the first 70 %, tau 0.2 (cdcjax.recipes.handwritten).

Measured (`python -m cdcjax.bench train --config=configs/usps_cdc.py
--seeds=S`, seeds 0 / 1 / 2, code of b935f5a, 2-core x86_64 CPU, jax 0.10.2,
two runs side by side, 1,286-1,361 s each): test ACC 0.7090 / 0.7598 /
0.7065, 0.7251 +- 0.0246 (NMI 0.7325 +- 0.0242, ARI 0.6138 +- 0.0315). On the
code of 687dab1 (2026-11-24) the same seeds gave 0.8426 / 0.7554 / 0.7180,
with the same data, initialisation and algorithm: seed 0's first six losses
are equal bit for bit from 570e871 (NaN-safe l2_normalize) to b935f5a and one
float32 rounding off before 570e871, so a seed's ACC moves by up to 13 points on
rounding alone; the six runs: 0.749 +- 0.047. Equal-size clusters
cannot score above 0.8896 here (the zeros are 17.9 % of the test split). CC
(configs/usps_cc.py) and CD (configs/usps_cd.py) do better.
"""

from cdcjax import recipes


def get_config(arg: str | None = None):
  return recipes.set_method(recipes.handwritten('usps', arg), 'cdc',
                                  arg)
