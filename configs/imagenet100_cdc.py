r"""CDC heads on ImageNet-100 (SCAN's 100 classes) on a frozen MoCo v2 ResNet-50 (800-epoch release); the backbone stays frozen.

1. Convert the PyTorch weights (no torch needed):
     python -m cdcjax.convert moco_v2_800ep_pretrain.pth.tar --out=/ckpt/mocov2_r50  # layout: moco_v2
2. Prepare ImageNet with tfds (put ILSVRC2012_img_train.tar and
   ILSVRC2012_img_val.tar in the manual directory first; building needs
   TensorFlow, reading does not):
     tfds build imagenet2012 --data_dir=$TFDS_DATA_DIR --file_format=array_record \
         --manual_dir=/path/to/ILSVRC2012_tars
3. Train (TPU pod: run on every host with --multihost; one GPU: lower
   --config.batch_size, the learning rate follows batch/256):
     python -m cdcjax.main --config=configs/imagenet100_cdc.py --workdir=/ckpt/imagenet100_cdc \
         --config.init_from=/ckpt/mocov2_r50 --config.data.tfds_dir=$TFDS_DATA_DIR \\
      --config.data.class_list=imagenet_100.txt

Recipe (cdcjax.recipes_large.imagenet): frozen ResNet-50 in inference mode,
two MLP heads, batch, optimiser and epochs as in the CDC paper (see IMAGENET in
recipes_large). ImageNet-100/200 need SCAN's class-list file (one WordNet id
per line, from SCAN's repository; cdcjax does not ship it) in
data.class_list. Augmentation: the recipe of the MoCo release the backbone
comes from (aug.recipe moco_v3 for ImageNet-1k, moco_v2 for the subsets).
The CDC paper reports ImageNet-100 results in its tables; see ../shared/notes/methods.md. Not measured by cdcjax yet: no result is claimed.
Tiny variant (real ResNet-50, 32x32 mock images, 2 steps; tests/test_imagenet.py):
configs/imagenet100_cdc.py:tiny.
"""

from cdcjax import recipes_large


def get_config(arg: str | None = None):
  return recipes_large.imagenet('imagenet100', arg)
