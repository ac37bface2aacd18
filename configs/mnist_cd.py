r"""Method 'cd' on MNIST (shared .npz, 2 border pixels
trimmed, resized to 16x16): train on the train
split, evaluate on the test split.

  export CDCJAX_DATA_DIR=../shared/datasets   # holds mnist.npz
  python -m cdcjax.main --config=configs/mnist_cd.py --workdir=/tmp/mnist_cd

Tiny variant: configs/mnist_cd.py:tiny. ResNet-10 width 0.25, small stem,
batch 256, Adam 1e-3, 4,000 steps (cdcjax.recipes.handwritten).
Measured at the former default of 2,000 steps (--config.total_steps=2000;
README, commit 706a39f, seed 0, 2-core CPU, beside another job):
test ACC 0.9426, NMI 0.8862, ARI 0.8784 (k-means on the feature predictions);
k-means on backbone features 0.9417; linear probe 0.9866. At 4,000 steps
(code of 5eb8ccf, seed 0, beside another run, 42 min;
"--config.evaluators=('kmeans_head','kmeans_features')"): ACC 0.9651,
NMI 0.9282, ARI 0.9248; k-means on backbone features 0.9641. Seeds 1 and 2
(commit 0690d38's code, four or five runs sharing the CPU): 0.9619 / 0.9643;
3 seeds: ACC 0.9638 +- 0.0014, NMI 0.9262 +- 0.0020, ARI 0.9221 +- 0.0029,
k-means on backbone features 0.9633 +- 0.0006.
"""

from cdcjax import recipes


def get_config(arg: str | None = None):
  return recipes.set_method(recipes.handwritten('mnist', arg), 'cd',
                                  arg)
