r"""CDC on CIFAR-100-20 (CIFAR-100 with its 20 superclasses; tfds `cifar100`, label `coarse_label`).

Prepare the data once (downloads; ArrayRecord files for tfds.data_source):

  pip install tensorflow  # tfds needs it to *build* datasets, not to read them
  tfds build cifar100 --data_dir=$TFDS_DATA_DIR --file_format=array_record

Train and evaluate (one GPU or a TPU pod; set --multihost on a pod):

  python -m cdcjax.main --config=configs/cifar100_20_cdc.py --workdir=/tmp/cifar100_20_cdc \
      --config.data.tfds_dir=$TFDS_DATA_DIR

Recipe: the CDC paper's small-dataset one (ResNet-18, SimCLR augmentation
without blur, SGD 0.06, momentum 0.9, wd 5e-4, batch 512, 1200 epochs; see
cdcjax.recipes_large.tfds_dataset). Paper (CDC + self-labeling, test split): ACC 49.2 ± 0.8 / NMI 50.4 / ARI 34.6.
Not measured by cdcjax yet: no result is claimed. Tiny variant (runs on
tfds.testing.mock_data in tests/test_tfds.py): configs/cifar100_20_cdc.py:tiny.
"""

from cdcjax import recipes
from cdcjax import recipes_large


def get_config(arg: str | None = None):
  return recipes.set_method(
      recipes_large.tfds_dataset('cifar100_20', arg), 'cdc', arg)
