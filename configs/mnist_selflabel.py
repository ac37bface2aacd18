r"""Method 'selflabel' on MNIST (shared .npz, 2 border pixels
trimmed, resized to 16x16): train on the train
split, evaluate on the test split.

  export CDCJAX_DATA_DIR=../shared/datasets   # holds mnist.npz
  python -m cdcjax.main --config=configs/mnist_cdc.py --workdir=/tmp/mnist_cdc
  python -m cdcjax.main --config=configs/mnist_selflabel.py \
      --config.init_from=/tmp/mnist_cdc --workdir=/tmp/mnist_selflabel

Tiny variant: configs/mnist_selflabel.py:tiny. ResNet-10 width 0.25, small stem,
batch 256, Adam 1e-4, 1,000 steps (a quarter of mnist_cdc's 4,000;
cdcjax.recipes.set_method). Not measured at this default (shorter runs from
2,000-step CDC checkpoints lowered ACC).
"""

from cdcjax import recipes


def get_config(arg: str | None = None):
  return recipes.set_method(recipes.handwritten('mnist', arg), 'selflabel',
                                  arg)
