r"""CDC on MNIST as the paper's text reads literally.

  export CDCJAX_DATA_DIR=../shared/datasets   # holds mnist.npz
  python -m cdcjax.main --config=configs/mnist_cdc_paper.py --workdir=/tmp/mnist_cdc_paper

As configs/mnist_cdc.py, except for the four choices of issue 31
(recipes.cdc_as_the_paper_reads): a constant lambda, [c_hat; s_hat]
re-normalised before the InfoNCE, same-view Sinkhorn targets, one shared head.
Train split for training, test split for scoring, 4,000 steps.

Measured: not yet.
"""

from cdcjax import recipes


def get_config(arg: str | None = None):
  return recipes.cdc_as_the_paper_reads(
      recipes.set_method(recipes.handwritten('mnist', arg), 'cdc',
                               arg))
