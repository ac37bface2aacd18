r"""CDC on USPS as the paper's text reads literally.

  export CDCJAX_DATA_DIR=../shared/datasets   # holds usps.npz
  python -m cdcjax.main --config=configs/usps_cdc_paper.py --workdir=/tmp/usps_cdc_paper

As configs/usps_cdc.py, except for the four choices of issue 31
(recipes.cdc_as_the_paper_reads): a constant lambda, [c_hat; s_hat]
re-normalised before the InfoNCE, same-view Sinkhorn targets, one shared head.
Train split for training, test split for scoring, 2,000 steps.

Measured (`python -m cdcjax.bench train --config=configs/usps_cdc_paper.py
--seeds=S`, 2-core x86_64 CPU, jax 0.10.2, two runs side by side beside
others, 43-59 min): test ACC 0.6712 / 0.7165 / 0.6542, 0.6806 +- 0.0263 (NMI
0.6998 +- 0.0231, ARI 0.5638 +- 0.0283), code of 00b8f8c: below the default
configs/usps_cdc.py (0.7251 +- 0.0246), so the literal reading does not carry
over from digits.
"""

from cdcjax import recipes


def get_config(arg: str | None = None):
  return recipes.cdc_as_the_paper_reads(
      recipes.set_method(recipes.handwritten('usps', arg), 'cdc',
                               arg))
