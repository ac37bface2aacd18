r"""CDC on ImageNet-10 (10 ImageNet classes, 13,000 training images): train and score on them (CC's protocol).

Prepare ImageNet once with tfds (ILSVRC2012_img_train.tar and
ILSVRC2012_img_val.tar in the manual directory; building needs TensorFlow,
reading does not), and write the 10 WordNet ids of DAC's ImageNet-10 (as CC
uses them; cdcjax does not ship the list) one per line to imagenet10.txt:

  tfds build imagenet2012 --data_dir=$TFDS_DATA_DIR --file_format=array_record \
      --manual_dir=/path/to/ILSVRC2012_tars
  python -m cdcjax.main --config=configs/imagenet10_cdc.py --workdir=/tmp/imagenet10_cdc \
      --config.data.tfds_dir=$TFDS_DATA_DIR --config.data.class_list=imagenet10.txt

Recipe: CC's (ResNet-34, ImageNet stem, 224 pixels, aug.recipe 'cc', Adam
3e-4, batch 256, 1000 epochs; cdcjax.recipes_large.cc_recipe) with the CDC
loss. The CDC paper has no ImageNet-10 number; CC reports ACC 0.893 / NMI
0.859 / ARI 0.822. Not measured by cdcjax yet: no result is claimed.
Tiny variant (tests/test_tfds.py, tfds mock data, no class list):
configs/imagenet10_cdc.py:tiny.
"""

from cdcjax import recipes
from cdcjax import recipes_large


def get_config(arg: str | None = None):
  return recipes.set_method(
      recipes_large.tfds_dataset('imagenet10', arg), 'cdc', arg)
