r"""Method 'cc' on MNIST (shared .npz, 2 border pixels
trimmed, resized to 16x16): train on the train
split, evaluate on the test split.

  export CDCJAX_DATA_DIR=../shared/datasets   # holds mnist.npz
  python -m cdcjax.main --config=configs/mnist_cc.py --workdir=/tmp/mnist_cc

Tiny variant: configs/mnist_cc.py:tiny. ResNet-10 width 0.25, small stem,
batch 256, Adam 1e-3, 4,000 steps (cdcjax.config_common.handwritten).
Expected with this config as it is (trimmed border; README, "Methods on MNIST
with the trimmed border"; --config.eval_every_steps=1000 --config.seed=S,
2-core CPU, beside other runs): test ACC 0.9783 / 0.9780 / 0.9792 for seeds
0 / 1 / 2, mean 0.9785 +- 0.0005, NMI 0.9475, ARI 0.9529 (cluster head);
CDC 0.9730 +- 0.0002 on the same data.
Untrimmed (--config.data.pad=0), at 4,000 steps (README, "Methods on MNIST at
4,000 steps"; commit
2920a64 with --config.total_steps=4000 --config.seed=S, 2-core CPU, beside
other runs): test ACC 0.9685 / 0.9694 / 0.9681 for seeds 0 / 1 / 2, mean
0.9687 +- 0.0005, NMI 0.9301 +- 0.0013, ARI 0.9323 +- 0.0012 (cluster head);
k-means on backbone features 0.9715 +- 0.0005. The best method on MNIST at
this budget (CDC 0.9578 +- 0.0155). At the former 2,000 steps
(--config.total_steps=2000; commits 487ed10 and 81dea49): 0.9636 +- 0.0020
over 3 seeds, linear probe 0.9880 (seed 0).
"""

from cdcjax import config_common


def get_config(arg: str | None = None):
  return config_common.set_method(config_common.handwritten('mnist', arg), 'cc',
                                  arg)
