r"""CDC on USPS as the paper's text reads literally.

  export CDCJAX_DATA_DIR=../shared/datasets   # holds usps.npz
  python -m cdcjax.main --config=configs/usps_cdc_paper.py --workdir=/tmp/usps_cdc_paper

As configs/usps_cdc.py, except for the four choices of issue 31
(config_common.cdc_as_the_paper_reads): a constant lambda, [c_hat; s_hat]
re-normalised before the InfoNCE, same-view Sinkhorn targets, one shared head.
Train split for training, test split for scoring, 2,000 steps.

Measured: not yet.
"""

from cdcjax import config_common


def get_config(arg: str | None = None):
  return config_common.cdc_as_the_paper_reads(
      config_common.set_method(config_common.handwritten('usps', arg), 'cdc',
                               arg))
