r"""CDC on ImageNet-Dogs (15 ImageNet dog classes, 19,500 training images): train and score on them (CC's protocol).

Prepare ImageNet once with tfds (ILSVRC2012_img_train.tar and
ILSVRC2012_img_val.tar in the manual directory; building needs TensorFlow,
reading does not), and write the 15 WordNet ids of DAC's ImageNet-Dogs (as CC
uses them; cdcjax does not ship the list) one per line to imagenet_dogs.txt:

  tfds build imagenet2012 --data_dir=$TFDS_DATA_DIR --file_format=array_record \
      --manual_dir=/path/to/ILSVRC2012_tars
  python -m cdcjax.main --config=configs/imagenet_dogs_cdc.py --workdir=/tmp/imagenet_dogs_cdc \
      --config.data.tfds_dir=$TFDS_DATA_DIR --config.data.class_list=imagenet_dogs.txt

Recipe: CC's (ResNet-34, ImageNet stem, 224 pixels, aug.recipe 'cc', Adam
3e-4, batch 256, 1000 epochs; cdcjax.recipes_large.cc_recipe) with the CDC
loss. The CDC paper has no ImageNet-Dogs number; CC reports ACC 0.429 / NMI
0.445 / ARI 0.274. Not measured by cdcjax yet: no result is claimed.
Tiny variant (tests/test_tfds.py, tfds mock data, no class list):
configs/imagenet_dogs_cdc.py:tiny.
"""

from cdcjax import recipes
from cdcjax import recipes_large


def get_config(arg: str | None = None):
  return recipes.set_method(
      recipes_large.tfds_dataset('imagenet_dogs', arg), 'cdc', arg)
