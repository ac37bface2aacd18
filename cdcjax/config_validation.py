"""Config validation: `validate` runs before any data loading, compilation
or write to the workdir, and raises `ConfigError` with one line naming the
bad field and what is allowed."""

import ml_collections

from cdcjax import augment
from cdcjax import data
from cdcjax import evaluators
from cdcjax import feature_cache
from cdcjax import losses
from cdcjax import methods
from cdcjax import models
from cdcjax import stages

OPTIMIZERS = ('sgd', 'adam', 'adamw', 'lars')
SINKHORN_TARGETS = ('same', 'swapped')
HEAD_LAYOUTS = ('two', 'shared')
STEMS = ('imagenet', 'small')
BACKBONES = tuple(models.ARCHITECTURES)  # One list: the models module's.
DATASETS = data.DATASETS
METHODS = methods.METHODS
CONTRASTS = ('in_batch', 'moco_v3')
BATCH_NORMS = ('global', 'per_device')


class ConfigError(ValueError):
  """A config value that is not allowed."""


def _require(ok: bool, field: str, value, allowed: str):
  if not ok:
    raise ConfigError(f'config.{field}={value!r} is not allowed: {allowed}')


def validate(c: ml_collections.ConfigDict, num_devices: int) -> None:
  """Raises ConfigError naming the first bad field."""
  _require(c.method in METHODS, 'method', c.method, f'one of {METHODS}')
  _require(c.data.name in DATASETS, 'data.name', c.data.name,
           f'one of {DATASETS}')
  _require(c.model.backbone in BACKBONES, 'model.backbone', c.model.backbone,
           f'one of {BACKBONES}')
  _require(c.model.stem in STEMS, 'model.stem', c.model.stem, f'one of {STEMS}')
  _require(c.model.head_layout in HEAD_LAYOUTS, 'model.head_layout',
           c.model.head_layout, f'one of {HEAD_LAYOUTS}')
  _require(c.model.compute_dtype in models.COMPUTE_DTYPES,
           'model.compute_dtype', c.model.compute_dtype,
           f'one of {models.COMPUTE_DTYPES}')
  _require(c.model.width > 0, 'model.width', c.model.width, 'must be > 0')
  _require(c.model.instance_dim >= 1, 'model.instance_dim',
           c.model.instance_dim, 'must be >= 1')
  _require(c.num_clusters >= 2, 'num_clusters', c.num_clusters,
           'need at least 2 clusters')
  for field in ('temperature', 'cluster_temperature', 'sinkhorn_epsilon'):
    value = c.loss[field]
    _require(value > 0, f'loss.{field}', value, 'must be > 0')
  _require(c.loss.contrast in CONTRASTS, 'loss.contrast', c.loss.contrast,
           f'one of {CONTRASTS}')
  _require(c.loss.contrast == 'in_batch' or c.method == 'cdc', 'loss.contrast',
           c.loss.contrast, "'moco_v3' is a CDC option (method cdc)")
  _require(0 <= c.loss.momentum < 1, 'loss.momentum', c.loss.momentum,
           'must be in [0, 1)')
  _require(c.loss.equipartition_weight >= 0, 'loss.equipartition_weight',
           c.loss.equipartition_weight, 'must be >= 0')
  _require(0 <= c.loss.equipartition_warmup_fraction <= 1,
           'loss.equipartition_warmup_fraction',
           c.loss.equipartition_warmup_fraction, 'must be in [0, 1]')
  _require(c.loss.sinkhorn_iters >= 1, 'loss.sinkhorn_iters',
           c.loss.sinkhorn_iters, 'must be >= 1')
  _require(0 < c.loss.sinkhorn_balance <= 1, 'loss.sinkhorn_balance',
           c.loss.sinkhorn_balance, 'must be in (0, 1]')
  _require(c.loss.sinkhorn_arithmetic in losses.SINKHORN_ARITHMETIC,
           'loss.sinkhorn_arithmetic', c.loss.sinkhorn_arithmetic,
           f'one of {losses.SINKHORN_ARITHMETIC}')
  _require(c.loss.sinkhorn_arithmetic == 'log' or c.loss.sinkhorn_balance == 1,
           'loss.sinkhorn_balance', c.loss.sinkhorn_balance,
           "must be 1 with loss.sinkhorn_arithmetic='exp' (SwAV's form)")
  _require(0 < c.loss.sinkhorn_balance_final <= 1,
           'loss.sinkhorn_balance_final', c.loss.sinkhorn_balance_final,
           'must be in (0, 1]')
  _require(0 <= c.loss.sinkhorn_balance_final_from <= 1,
           'loss.sinkhorn_balance_final_from',
           c.loss.sinkhorn_balance_final_from, 'must be in [0, 1]')
  _require(c.loss.sinkhorn_arithmetic == 'log'
           or c.loss.sinkhorn_balance_final == 1
           or c.loss.sinkhorn_balance_final_from == 1,
           'loss.sinkhorn_balance_final', c.loss.sinkhorn_balance_final,
           "must be 1 with loss.sinkhorn_arithmetic='exp' (SwAV's form)")
  _require(c.loss.sinkhorn_target in SINKHORN_TARGETS, 'loss.sinkhorn_target',
           c.loss.sinkhorn_target, f'one of {SINKHORN_TARGETS}')
  _require(c.loss.use_infonce or c.loss.use_equipartition, 'loss.use_infonce',
           c.loss.use_infonce, 'at least one of use_infonce and '
           'use_equipartition must be True')
  _require(c.optimizer.name in OPTIMIZERS, 'optimizer.name', c.optimizer.name,
           f'one of {OPTIMIZERS}')
  _require(c.optimizer.learning_rate > 0, 'optimizer.learning_rate',
           c.optimizer.learning_rate, 'must be > 0')
  _require(0 <= c.optimizer.warmup_fraction < 1, 'optimizer.warmup_fraction',
           c.optimizer.warmup_fraction, 'must be in [0, 1)')
  _require(c.optimizer.weight_decay >= 0, 'optimizer.weight_decay',
           c.optimizer.weight_decay, 'must be >= 0')
  for field in ('batch_size', 'eval_batch_size'):
    _require(c[field] >= 2, field, c[field], 'must be >= 2')
  # Evaluation batches are padded to a multiple of the device count; the
  # training batch is split over the devices as it is.
  _require(c.batch_size % num_devices == 0, 'batch_size', c.batch_size,
           f'must be divisible by the device count {num_devices}')
  _require(c.total_steps > 0 or c.num_epochs > 0, 'total_steps',
           c.total_steps, 'set total_steps > 0 or num_epochs > 0')
  for field in ('log_every_steps', 'checkpoint_every_steps'):
    _require(c[field] >= 1, field, c[field], 'must be >= 1')
  _require(c.eval_every_steps >= 0, 'eval_every_steps', c.eval_every_steps,
           'must be >= 0 (0: only at the end)')
  _require(c.keep_checkpoints >= 1, 'keep_checkpoints', c.keep_checkpoints,
           'must be >= 1')
  _require(c.keep_checkpoint_every_steps == 0 or (
      c.keep_checkpoint_every_steps > 0 and
      c.keep_checkpoint_every_steps % c.checkpoint_every_steps == 0),
           'keep_checkpoint_every_steps', c.keep_checkpoint_every_steps,
           f'must be 0 (no milestones) or a positive multiple of '
           f'checkpoint_every_steps ({c.checkpoint_every_steps})')
  _require(c.data.pad == 0 or c.data.name in ('digits', *data.NPZ_DATASETS,
                                               'npz'),
           'data.pad', c.data.pad, 'padding is applied to digits and .npz '
           f'sources only (data.name={c.data.name!r}); use 0')
  _require(c.data.image_size >= 4, 'data.image_size', c.data.image_size,
           'must be >= 4')
  for field in ('train_split', 'eval_split'):
    _require(c.data[field] in data.SPLITS or
             (c.data.name == 'tfds' and c.data[field]), f'data.{field}',
             c.data[field], f'one of {data.SPLITS} (any tfds split string '
             "with data.name='tfds')")
  _require(c.data.name != 'tfds' or c.data.tfds_name, 'data.tfds_name',
           c.data.tfds_name, "data.name='tfds' needs a tfds dataset name")
  _require(c.data.name != 'npz' or c.data.path, 'data.path', c.data.path,
           "data.name='npz' needs data.path (a .npz file)")
  _require(c.data.name != 'folder' or c.data.path, 'data.path', c.data.path,
           "data.name='folder' needs data.path (a directory of images)")
  _require(c.aug.recipe in augment.RECIPES, 'aug.recipe', c.aug.recipe,
           f'one of {augment.RECIPES}')
  _require(0 < c.aug.crop_scale[0] <= c.aug.crop_scale[1] <= 1,
           'aug.crop_scale', tuple(c.aug.crop_scale),
           'need 0 < min <= max <= 1')
  _require(c.aug.color_strength >= 0, 'aug.color_strength',
           c.aug.color_strength, 'must be >= 0')
  _require(0 <= c.aug.blur_prob <= 1, 'aug.blur_prob', c.aug.blur_prob,
           'must be in [0, 1]')
  _require(c.aug.output_size >= 0, 'aug.output_size', c.aug.output_size,
           'must be >= 0 (0: the input size)')
  _require(not (c.aug.output_size or c.aug.color_on_device) or
           c.aug.recipe in augment.CONTRASTIVE_RECIPES,
           'aug.recipe', c.aug.recipe, 'aug.output_size and '
           f'aug.color_on_device need one of {augment.CONTRASTIVE_RECIPES}')
  views = c.data.cached_views
  _require(views == 0 or views >= 2, 'data.cached_views', views,
           '0 (off) or at least 2 views')
  if views:
    _require(c.model.freeze_backbone, 'data.cached_views', views,
             'needs model.freeze_backbone=True (a trained backbone changes '
             'its features every step)')
    _require(c.method != 'selflabel', 'data.cached_views', views,
             'not for self-labeling (its weak view is the raw image)')
    _require(not c.aug.color_on_device, 'data.cached_views', views,
             'needs aug.color_on_device=False (views are made once, on the '
             'host)')
  _require(c.data.cached_dtype in feature_cache.CACHED_DTYPES,
           'data.cached_dtype', c.data.cached_dtype,
           f'one of {feature_cache.CACHED_DTYPES}')
  _require(not c.data.balance_classes or c.data.name not in ('tfds',),
           'data.balance_classes', c.data.balance_classes,
           'array sources only (digits, mnist, usps, cifar10, npz, folder)')
  _require(c.model.batch_norm in BATCH_NORMS, 'model.batch_norm',
           c.model.batch_norm, f'one of {BATCH_NORMS}')
  # What several cluster heads and CD-prediction inputs both need.
  cdc_two_heads = (c.method == 'cdc' and c.model.head_layout == 'two'
                   and c.loss.contrast == 'in_batch')
  needs = "needs method cdc with model.head_layout='two' and "
  needs += "loss.contrast='in_batch'"
  heads = c.model.num_cluster_heads
  _require(heads >= 1, 'model.num_cluster_heads', heads, 'must be >= 1')
  _require(heads == 1 or cdc_two_heads, 'model.num_cluster_heads', heads,
           f'more than 1 {needs}')
  head_input = c.model.cluster_head_input
  _require(head_input in models.CLUSTER_HEAD_INPUTS,
           'model.cluster_head_input', head_input,
           f'one of {models.CLUSTER_HEAD_INPUTS}')
  if head_input == 'cd_predictions':
    _require(cdc_two_heads, 'model.cluster_head_input', head_input, needs)
    _require(c.model.freeze_backbone and c.init_from,
             'model.cluster_head_input', head_input,
             'reads a trained CD run: set model.freeze_backbone=True and '
             'init_from to the CD workdir')
    reset = sorted(set(models.CD_PREDICTION_MODULES) &
                   (set(c.init_fresh) | set(c.init_skip)))
    _require(not reset, 'model.cluster_head_input', head_input,
             f'loads {reset} from init_from: remove them from init_fresh '
             'and init_skip')
  _require(c.model.num_features >= 1, 'model.num_features',
           c.model.num_features, 'must be >= 1')
  for group in ('cc', 'cd', 'simclr'):
    for field, value in c[group].items():
      if field.endswith('temperature'):
        _require(value > 0, f'{group}.{field}', value, 'must be > 0')
  _require(c.self_label.source_method in methods.SELF_LABEL_SOURCES,
           'self_label.source_method', c.self_label.source_method,
           f'one of {methods.SELF_LABEL_SOURCES}')
  _require(0 < c.self_label.threshold < 1, 'self_label.threshold',
           c.self_label.threshold, 'must be in (0, 1)')
  _require(c.method != 'selflabel' or c.init_from, 'init_from', c.init_from,
           'method selflabel starts from a trained workdir: set init_from')
  # With pretrain.method, stage 1's workdir is stage 2's init_from.
  starts_from_a_run = c.init_from or c.pretrain.method
  _require(not c.init_fresh or starts_from_a_run, 'init_fresh',
           tuple(c.init_fresh), 'only applies with init_from set (the trained '
           'workdir whose other modules the run starts from)')
  _require(not c.init_skip or starts_from_a_run, 'init_skip',
           tuple(c.init_skip), 'only applies with init_from set (the trained '
           'workdir whose modules it names)')
  _require(c.eval_num_clusters == 0 or
           2 <= c.eval_num_clusters <= c.num_clusters, 'eval_num_clusters',
           c.eval_num_clusters,
           f'must be 0 (num_clusters) or in [2, num_clusters={c.num_clusters}]')
  _require('cluster_head_merged' not in c.evaluators or
           0 < c.eval_num_clusters < c.num_clusters, 'eval_num_clusters',
           c.eval_num_clusters, "evaluator 'cluster_head_merged' merges the "
           f'head\'s num_clusters={c.num_clusters} clusters into fewer: set it '
           'in [2, num_clusters)')
  _require(not (c.loss.renormalize_concat and c.loss.contrast == 'moco_v3'),
           'loss.renormalize_concat', c.loss.renormalize_concat,
           "applies to the in-batch InfoNCE, not with loss.contrast='moco_v3'")
  for field in ('grid_images', 'strip_images', 'max_clusters', 'map_points'):
    _require(c.report[field] >= 1, f'report.{field}', c.report[field],
             'must be >= 1')
  try:
    evaluators.check_evaluators(tuple(c.evaluators),
                                methods.has_cluster_head(c), c.method)
  except ValueError as e:
    raise ConfigError(str(e)) from None
  _validate_pretrain(c, num_devices)


def _validate_pretrain(c: ml_collections.ConfigDict, num_devices: int) -> None:
  """A two-stage run (cdcjax/stages.py): both stages checked before stage 1
  trains."""
  pretrain = c.pretrain
  _require(pretrain.method in ('', *stages.PRETRAIN_METHODS),
           'pretrain.method', pretrain.method,
           f"'' (one stage) or one of {stages.PRETRAIN_METHODS}")
  if not pretrain.method:
    return
  _require(pretrain.total_steps >= 1, 'pretrain.total_steps',
           pretrain.total_steps, 'must be >= 1 with pretrain.method set')
  _require(not c.init_from, 'init_from', c.init_from,
           'must be empty with pretrain.method set (stage 2 starts from '
           'stage 1 in WORKDIR/pretrain)')
  _require(c.method == 'cdc' and 'cluster_head' in c.init_fresh,
           'pretrain.method', pretrain.method,
           "stage 2 must be method 'cdc' with 'cluster_head' in init_fresh "
           '(stage 1 trains no cluster head); see '
           'recipes.cdc_on_frozen_backbone')
  validate(stages.pretrain_config(c), num_devices)


# Evaluators each method reports by default; the first gives acc/nmi/ari.
