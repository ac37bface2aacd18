"""Recipes for the papers' larger datasets: CIFAR-100-20, STL-10, ImageNet-10
and -Dogs (tensorflow-datasets), Tiny-ImageNet (its folder release) and the
ImageNet recipes on a frozen, converted MoCo backbone. Accelerator configs;
each has a tiny variant that the tests run on mock data.
"""

import ml_collections

from cdcjax.config_defaults import base_config
from cdcjax.recipes import check_arg
from cdcjax.recipes import cifar10
from cdcjax.recipes import folder
from cdcjax.recipes import set_method


# Paper datasets read through tensorflow-datasets (data.name='tfds').
TFDS_DATASETS = {
    # CIFAR-100 with its 20 superclasses as labels (the papers' CIFAR-100-20).
    'cifar100_20': dict(tfds_name='cifar100', tfds_label='coarse_label',
                        num_clusters=20, image_size=32, train_split='train',
                        eval_split='test', stem='small'),
    # STL-10: train on train + the 100k unlabelled images, score the test
    # split (the CDC paper's protocol, K = 10).
    'stl10': dict(tfds_name='stl10', tfds_label='label', num_clusters=10,
                  image_size=96, train_split='train+unlabelled',
                  eval_split='test', stem='imagenet'),
    # ImageNet-10 / ImageNet-Dogs: ImageNet subsets (DAC's 10 classes, 15 dog
    # classes; class-list files not shipped), CC's protocol: train and score
    # on the subset's training images, CC's data recipe (cc_recipe).
    'imagenet10': dict(tfds_name='imagenet2012', tfds_label='label',
                       num_clusters=10, image_size=224, train_split='train',
                       eval_split='train', stem='imagenet', cc_recipe=True),
    'imagenet_dogs': dict(tfds_name='imagenet2012', tfds_label='label',
                          num_clusters=15, image_size=224, train_split='train',
                          eval_split='train', stem='imagenet', cc_recipe=True),
}


def cc_recipe(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """CC's data recipe for ImageNet-10 / -Dogs / Tiny-ImageNet (no CDC numbers
  exist there): ResNet-34 with the ImageNet stem at 224 pixels, the cc
  augmentation, Adam 3e-4 without weight decay, batch 256, 1000 epochs."""
  c.model.backbone = 'resnet34'
  c.model.stem = 'imagenet'
  c.aug.recipe = 'cc'
  c.optimizer.name = 'adam'
  c.optimizer.learning_rate = 3e-4
  c.optimizer.weight_decay = 0.0
  c.batch_size = 256
  c.num_epochs = 1000
  return c


def tfds_dataset(name: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """A paper dataset from tfds with the CDC paper's small-dataset recipe (the
  CIFAR-10 one: ResNet-18, SimCLR augmentation, SGD 0.06, batch 512, 1200
  epochs). The tiny variant runs on 16x16 images for a few steps."""
  spec = TFDS_DATASETS[name]
  c = cifar10(arg)
  c.data.name = 'tfds'
  c.data.tfds_name = spec['tfds_name']
  c.data.tfds_label = spec['tfds_label']
  c.data.train_split = spec['train_split']
  c.data.eval_split = spec['eval_split']
  c.num_clusters = spec['num_clusters']
  c.model.stem = spec['stem']
  if arg != 'tiny':
    c.data.image_size = spec['image_size']
    if spec.get('cc_recipe'):
      cc_recipe(c)
  return c


def tiny_imagenet(arg: str | None = None) -> ml_collections.ConfigDict:
  """Tiny-ImageNet (200 classes, 64x64) from its folder release (tfds has no
  build of it): train and score on the 100,000 training images (CC's
  protocol), CC's recipe with the images resized to 224 in the crop."""
  c = folder(arg)
  c.model.compute_dtype = 'bfloat16'  # An accelerator recipe.
  c.evaluators = ('cluster_head', 'kmeans_features')
  if arg != 'tiny':
    c.num_clusters = 200
    c.data.image_size = 64
    cc_recipe(c)
    c.aug.output_size = 224
  return c


# The ImageNet recipes: a converted MoCo ResNet-50, frozen; only the heads
# train (the CDC paper, sec. 3).
IMAGENET = {
    # Full ImageNet, MoCo v3 R50 (1000 epochs), LARS lr 0.3, wd 1e-6, 200
    # epochs, MoCo v3's settings (global batch 4096, lr scaled by batch/256).
    'imagenet': dict(num_clusters=1000, optimizer='lars', learning_rate=0.3,
                     weight_decay=1e-6, batch_size=4096, num_epochs=200,
                     instance_dim=256, hidden=(4096,), class_list=''),
    # ImageNet-100 / -200 (SCAN's class lists), MoCo v2 R50 (800 epochs),
    # SGD lr 0.03, momentum 0.9, wd 1e-4, batch 256, 400 epochs.
    'imagenet100': dict(num_clusters=100, optimizer='sgd', learning_rate=0.03,
                        weight_decay=1e-4, batch_size=256, num_epochs=400,
                        instance_dim=256, hidden=(2048,), class_list='FILE'),
    'imagenet200': dict(num_clusters=200, optimizer='sgd', learning_rate=0.03,
                        weight_decay=1e-4, batch_size=256, num_epochs=400,
                        instance_dim=256, hidden=(2048,), class_list='FILE'),
    # SCAN's ImageNet-50, with the ImageNet-100/200 recipe.
    'imagenet50': dict(num_clusters=50, optimizer='sgd', learning_rate=0.03,
                       weight_decay=1e-4, batch_size=256, num_epochs=400,
                       instance_dim=256, hidden=(2048,), class_list='FILE'),
}


def imagenet(name: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """CDC heads on a frozen, converted MoCo ResNet-50 (init_from = the output
  directory of python -m cdcjax.convert). The tiny variant keeps the real
  ResNet-50 but runs 32x32 images, batch 8, 2 steps (mock data in tests)."""
  check_arg(arg)
  spec = IMAGENET[name]
  c = base_config()
  c.data.name = 'tfds'
  c.data.tfds_name = 'imagenet2012'
  c.data.train_split = 'train'
  c.data.eval_split = 'validation'
  c.data.image_size = 224
  c.data.num_threads = 16
  c.num_clusters = spec['num_clusters']
  c.batch_size = spec['batch_size']
  c.eval_batch_size = 1000
  c.num_epochs = spec['num_epochs']
  c.log_every_steps = 100
  c.checkpoint_every_steps = 1000
  # The augmentation of the MoCo release whose backbone the heads train on.
  c.aug.recipe = 'moco_v3' if name == 'imagenet' else 'moco_v2'
  c.model.backbone = 'resnet50'
  c.model.stem = 'imagenet'
  c.model.width = 1.0
  c.model.freeze_backbone = True
  c.model.compute_dtype = 'bfloat16'  # An accelerator recipe.
  c.model.head_hidden_dims = spec['hidden']
  c.model.instance_dim = spec['instance_dim']
  # Used with --config.loss.contrast=moco_v3 (MoCo v3's momentum heads and
  # predictor; whether the paper's heads use them is open, so not default).
  c.model.predictor_hidden_dims = spec['hidden']
  c.optimizer.name = spec['optimizer']
  # MoCo's convention: the base learning rate is for a batch of 256.
  c.optimizer.learning_rate = spec['learning_rate'] * c.batch_size / 256
  c.optimizer.weight_decay = spec['weight_decay']
  c.optimizer.momentum = 0.9
  c.optimizer.warmup_fraction = 0.05
  c.loss.temperature = 0.2
  set_method(c, 'cdc', arg)
  c.evaluators = ('cluster_head', 'kmeans_head')
  if arg == 'tiny':
    c.data.image_size = 32
    c.batch_size = 8
    c.eval_batch_size = 8
    c.total_steps = 2
    c.num_clusters = 10
    c.log_every_steps = 1
    c.checkpoint_every_steps = 2
    c.data.num_threads = 2
    c.model.head_hidden_dims = (64,)
    c.model.instance_dim = 16
    c.evaluators = ('cluster_head', 'kmeans_head')  # k-means on the mesh too.
  return c
