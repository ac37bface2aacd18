r"""CDC on Tiny-ImageNet (200 classes, 64x64, 100,000 training images) from its folder release: train and score on the training images (CC's protocol).

tfds has no build of Tiny-ImageNet; unzip the official release
(tiny-imagenet-200.zip) and point data.path at its train/ folder, whose class
subfolders (one per WordNet id, images under images/) give the labels:

  python -m cdcjax.main --config=configs/tiny_imagenet_cdc.py --workdir=/tmp/tiny_imagenet_cdc \
      --config.data.path=/data/tiny-imagenet-200/train

Recipe: CC's (ResNet-34, ImageNet stem, crops resized to 224, aug.recipe
'cc', Adam 3e-4, batch 256, 1000 epochs; cdcjax.recipes_large.cc_recipe)
with the CDC loss, K = 200. The CDC paper has no Tiny-ImageNet number; CC
reports ACC 0.140 / NMI 0.340 / ARI 0.071. Not measured by cdcjax yet: no
result is claimed. Tiny variant (tests/test_folders.py runs it on a small
generated folder): configs/tiny_imagenet_cdc.py:tiny.
"""

from cdcjax import recipes
from cdcjax import recipes_large


def get_config(arg: str | None = None):
  return recipes.set_method(recipes_large.tiny_imagenet(arg), 'cdc',
                                  arg)
