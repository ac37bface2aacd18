r"""CDC on STL-10 (tfds `stl10`, 96x96): train on train+unlabelled (105,000 images), score the 8,000 test images.

Prepare the data once (downloads; ArrayRecord files for tfds.data_source):

  pip install tensorflow  # tfds needs it to *build* datasets, not to read them
  tfds build stl10 --data_dir=$TFDS_DATA_DIR --file_format=array_record

Train and evaluate (one GPU or a TPU pod; set --multihost on a pod):

  python -m cdcjax.main --config=configs/stl10_cdc.py --workdir=/tmp/stl10_cdc \
      --config.data.tfds_dir=$TFDS_DATA_DIR

Recipe: the CDC paper's small-dataset one (ResNet-18, SimCLR augmentation
without blur, SGD 0.06, momentum 0.9, wd 5e-4, batch 512, 1200 epochs; see
cdcjax.recipes_large.tfds_dataset). Paper, test split: CDC ACC 71.2 ± 1.5 / NMI 64.3 / ARI 55.3; with self-labeling 75.2 ± 0.8.
Not measured by cdcjax yet: no result is claimed. Tiny variant (runs on
tfds.testing.mock_data in tests/test_tfds.py): configs/stl10_cdc.py:tiny.
"""

from cdcjax import recipes
from cdcjax import recipes_large


def get_config(arg: str | None = None):
  return recipes.set_method(
      recipes_large.tfds_dataset('stl10', arg), 'cdc', arg)
