r"""CDC heads on full ImageNet (K = 1000) on a frozen MoCo v3 ResNet-50 (1000-epoch release); the backbone stays frozen.

1. Convert the PyTorch weights (no torch needed):
     python -m cdcjax.convert r-50-1000ep.pth.tar --out=/ckpt/mocov3_r50  # layout: moco_v3
2. Prepare ImageNet with tfds (put ILSVRC2012_img_train.tar and
   ILSVRC2012_img_val.tar in the manual directory first; building needs
   TensorFlow, reading does not):
     tfds build imagenet2012 --data_dir=$TFDS_DATA_DIR --file_format=array_record \
         --manual_dir=/path/to/ILSVRC2012_tars
3. Train (TPU pod: run on every host with --multihost; one GPU: lower
   --config.batch_size, the learning rate follows batch/256):
     python -m cdcjax.main --config=configs/imagenet_cdc.py --workdir=/ckpt/imagenet_cdc \
         --config.init_from=/ckpt/mocov3_r50 --config.data.tfds_dir=$TFDS_DATA_DIR

Recipe (cdcjax.recipes_large.imagenet): frozen ResNet-50 in inference mode,
two MLP heads, batch, optimiser and epochs as in the CDC paper (see IMAGENET in
recipes_large). ImageNet-100/200 need SCAN's class-list file (one WordNet id
per line, from SCAN's repository; cdcjax does not ship it) in
data.class_list. Augmentation: the recipe of the MoCo release the backbone
comes from (aug.recipe moco_v3 for ImageNet-1k, moco_v2 for the subsets).
Paper (ImageNet-1k validation): ACC 53.4 / NMI 76.3 / ARI 34.7. Not measured by cdcjax yet: no result is claimed.
Computes in bfloat16. Compiled for a 64-chip v5p:4x4x4 (16 hosts) on a CPU
(python -m cdcjax.aot --config=configs/imagenet_cdc.py --topology=v5p:4x4x4):
batch 4,096, 0.77 GB per chip, memory-bound at 4.8 ms per step on the roofline
(f32: 1.05 GB, 6.6 ms); README, "Accelerators".
Cached features (--config.data.cached_views=V, cdcjax/feature_cache.py): the
frozen backbone's 2,048 pooled features of V augmented views of each of the
1,281,167 training images are computed once (V inference passes over the
train split, against 2 views x 200 epochs = 400 in the uncached run) and the
heads then train without the backbone. Storage: 10.5 GB per view in float32,
5.2 GB per view with --config.data.cached_dtype=float16, as one .npy per view
and process under WORKDIR/feature_cache (each process holds its 1/N of the
images; memory-mapped on a local disk, read into host memory from gs://).
V = 10 in float16 is 52 GB: one GPU machine with that much local disk trains
the heads at head-only cost. Not measured on an accelerator yet.
Tiny variant (real ResNet-50, 32x32 mock images, 2 steps; tests/test_imagenet.py):
configs/imagenet_cdc.py:tiny.
"""

from cdcjax import recipes_large


def get_config(arg: str | None = None):
  return recipes_large.imagenet('imagenet', arg)
