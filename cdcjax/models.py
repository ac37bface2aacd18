"""Flax Linen ResNets in torchvision layout, MLP heads and the clustering model.

Layout follows torchvision so PyTorch checkpoints map one-to-one: explicit
symmetric padding (Flax 'SAME' pads stride-2 convolutions asymmetrically), the
stride of a bottleneck on its 3x3 conv (ResNet v1.5), BatchNorm eps 1e-5 and
momentum 0.1 (Flax momentum 0.9), no conv biases.

Mixed precision: `dtype` is the compute dtype of convolutions and Dense
layers (bfloat16 on accelerators); parameters stay float32 (flax's
`param_dtype`), BatchNorm computes its statistics and normalisation in
float32, and the model's outputs are cast to float32, so losses, Sinkhorn
and optimiser see float32 only.
"""

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

COMPUTE_DTYPES = ('float32', 'bfloat16')


class BatchNorm(nn.Module):
  """BatchNorm with PyTorch's defaults, variables named as nn.BatchNorm's.

  groups > 1 computes the statistics per contiguous slice of the batch: with
  the batch sharded over `groups` devices that is per-device BatchNorm (as
  PyTorch DDP without SyncBatchNorm); the running statistics are the mean over
  the groups. groups = 1 is synchronised (global-batch) BatchNorm, identical
  to nn.BatchNorm(momentum=0.9, epsilon=1e-5).
  """
  use_running_average: bool
  groups: int = 1
  momentum: float = 0.9  # PyTorch momentum 0.1.
  epsilon: float = 1e-5
  use_scale: bool = True
  use_bias: bool = True

  @nn.compact
  def __call__(self, x):
    features = x.shape[-1]
    running_mean = self.variable('batch_stats', 'mean', jnp.zeros,
                                 (features,), jnp.float32)
    running_var = self.variable('batch_stats', 'var', jnp.ones, (features,),
                                jnp.float32)
    x32 = x.astype(jnp.float32)
    if self.use_running_average:
      mean, var = running_mean.value, running_var.value
    else:
      if x.shape[0] % self.groups:
        raise ValueError(f'batch of {x.shape[0]} does not split into '
                         f'{self.groups} BatchNorm groups')
      grouped = x32.reshape((self.groups, -1) + x.shape[1:])
      axes = tuple(range(1, grouped.ndim - 1))
      mean = jnp.mean(grouped, axes, keepdims=True)
      # E[x^2] - E[x]^2, as nn.BatchNorm's default (fast) variance.
      var = jnp.maximum(
          0.0, jnp.mean(grouped**2, axes, keepdims=True) - mean**2)
      if not self.is_initializing():
        m = self.momentum
        running_mean.value = (m * running_mean.value + (1 - m) *
                              mean.reshape(self.groups, features).mean(0))
        running_var.value = (m * running_var.value + (1 - m) *
                             var.reshape(self.groups, features).mean(0))
      x32 = grouped
    y = (x32 - mean) * jax.lax.rsqrt(var + self.epsilon)
    y = y.reshape(x.shape)
    if self.use_scale:
      y = y * self.param('scale', nn.initializers.ones, (features,))
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros, (features,))
    return y.astype(x.dtype)


def _pad(k: int) -> tuple[tuple[int, int], tuple[int, int]]:
  return ((k // 2, k // 2), (k // 2, k // 2))


class BasicBlock(nn.Module):
  features: int
  strides: int = 1
  bn_groups: int = 1
  dtype: Any = jnp.float32
  expansion = 1

  @nn.compact
  def __call__(self, x, train: bool):
    norm = functools.partial(BatchNorm, use_running_average=not train,
                             groups=self.bn_groups)
    conv = functools.partial(nn.Conv, use_bias=False, dtype=self.dtype)
    residual = x
    y = conv(self.features, (3, 3), self.strides, padding=_pad(3),
             name='conv1')(x)
    y = nn.relu(norm(name='bn1')(y))
    y = conv(self.features, (3, 3), 1, padding=_pad(3), name='conv2')(y)
    y = norm(name='bn2')(y)
    if residual.shape != y.shape:
      residual = conv(self.features, (1, 1), self.strides,
                      name='downsample_conv')(x)
      residual = norm(name='downsample_bn')(residual)
    return nn.relu(y + residual)


class Bottleneck(nn.Module):
  features: int
  strides: int = 1
  bn_groups: int = 1
  dtype: Any = jnp.float32
  expansion = 4

  @nn.compact
  def __call__(self, x, train: bool):
    norm = functools.partial(BatchNorm, use_running_average=not train,
                             groups=self.bn_groups)
    conv = functools.partial(nn.Conv, use_bias=False, dtype=self.dtype)
    residual = x
    y = conv(self.features, (1, 1), name='conv1')(x)
    y = nn.relu(norm(name='bn1')(y))
    y = conv(self.features, (3, 3), self.strides, padding=_pad(3),
             name='conv2')(y)
    y = nn.relu(norm(name='bn2')(y))
    y = conv(self.features * 4, (1, 1), name='conv3')(y)
    y = norm(name='bn3')(y)
    if residual.shape != y.shape:
      residual = conv(self.features * 4, (1, 1), self.strides,
                      name='downsample_conv')(x)
      residual = norm(name='downsample_bn')(residual)
    return nn.relu(y + residual)


class ResNet(nn.Module):
  """ResNet backbone returning the globally average-pooled feature.

  Attributes:
    stage_sizes: blocks per stage, e.g. (2, 2, 2, 2) for ResNet-18.
    block: BasicBlock or Bottleneck.
    width: multiplier on the base width 64 (tiny variants use < 1).
    stem: 'imagenet' (7x7 stride-2 conv + 3x3 stride-2 max-pool) or 'small'
      (3x3 stride-1 conv, no max-pool; CIFAR-sized and smaller inputs).
    dtype: compute dtype of the convolutions (parameters stay float32); the
      pooled feature is float32.
  """
  stage_sizes: Sequence[int]
  block: Any
  width: float = 1.0
  stem: str = 'imagenet'
  bn_groups: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = True):
    base = max(1, int(round(64 * self.width)))
    norm = functools.partial(BatchNorm, use_running_average=not train,
                             groups=self.bn_groups)
    x = x.astype(self.dtype)
    if self.stem == 'imagenet':
      x = nn.Conv(base, (7, 7), 2, padding=_pad(7), use_bias=False,
                  dtype=self.dtype, name='conv1')(x)
      x = nn.relu(norm(name='bn1')(x))
      x = nn.max_pool(x, (3, 3), (2, 2), padding=_pad(3))
    elif self.stem == 'small':
      x = nn.Conv(base, (3, 3), 1, padding=_pad(3), use_bias=False,
                  dtype=self.dtype, name='conv1')(x)
      x = nn.relu(norm(name='bn1')(x))
    else:
      raise ValueError(f"stem={self.stem!r}; allowed: 'imagenet', 'small'")
    for i, num_blocks in enumerate(self.stage_sizes):
      for j in range(num_blocks):
        strides = 2 if i > 0 and j == 0 else 1
        x = self.block(base * 2**i, strides, bn_groups=self.bn_groups,
                       dtype=self.dtype, name=f'layer{i + 1}_{j}')(x, train)
    return jnp.mean(x.astype(jnp.float32), axis=(1, 2))


ARCHITECTURES = {
    'resnet10': ((1, 1, 1, 1), BasicBlock),  # For tiny images on a CPU.
    'resnet18': ((2, 2, 2, 2), BasicBlock),
    'resnet34': ((3, 4, 6, 3), BasicBlock),
    'resnet50': ((3, 4, 6, 3), Bottleneck),
}


def make_backbone(name: str, width: float = 1.0, stem: str = 'imagenet',
                  bn_groups: int = 1, dtype: str = 'float32'):
  if name not in ARCHITECTURES:
    raise ValueError(f'model.backbone={name!r}; allowed: {sorted(ARCHITECTURES)}')
  stage_sizes, block = ARCHITECTURES[name]
  return ResNet(stage_sizes, block, width=width, stem=stem, bn_groups=bn_groups,
                dtype=compute_dtype(dtype))


def compute_dtype(name: str):
  if name not in COMPUTE_DTYPES:
    raise ValueError(f'model.compute_dtype={name!r}; allowed: {COMPUTE_DTYPES}')
  return jnp.dtype(name)


class MLPHead(nn.Module):
  """Linear -> [BN] -> ReLU -> ... -> Linear [-> BN] (SimCLR's head shape).

  With BN the hidden Linear layers have no bias (BN's bias replaces it).
  Dense layers compute in `dtype`; the output is float32.
  """
  hidden_dims: Sequence[int]
  out_dim: int
  use_bn: bool = True
  out_bias: bool = True
  out_bn: bool = False
  out_bn_affine: bool = True  # False: MoCo v3's projector (BN, no affine).
  bn_groups: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = True):
    norm = functools.partial(BatchNorm, use_running_average=not train,
                             groups=self.bn_groups)
    for i, dim in enumerate(self.hidden_dims):
      x = nn.Dense(dim, use_bias=not self.use_bn, dtype=self.dtype,
                   name=f'fc{i}')(x)
      if self.use_bn:
        x = norm(name=f'bn{i}')(x)
      x = nn.relu(x)
    last = len(self.hidden_dims)
    x = nn.Dense(self.out_dim, use_bias=self.out_bias, dtype=self.dtype,
                 name=f'fc{last}')(x).astype(jnp.float32)
    if self.out_bn:
      x = norm(use_scale=self.out_bn_affine, use_bias=self.out_bn_affine,
               name=f'bn{last}')(x)
    return x


HEADS = ('cdc', 'cc', 'cd', 'instance')
CLUSTER_HEAD_INPUTS = ('features', 'cd_predictions')
# Modules a cluster_head_input of 'cd_predictions' keeps frozen (with the
# backbone): CD's, loaded from init_from.
CD_PREDICTION_MODULES = ('instance_head', 'feature_predictor')


def cluster_head_name(index: int) -> str:
  """Head 0 keeps the single-head name, so its checkpoints read the same."""
  return 'cluster_head' if index == 0 else f'cluster_head_{index}'


class ClusteringModel(nn.Module):
  """A backbone and the heads of one method. Outputs a dict with 'features'
  (pooled backbone output) and, by `heads`:

  - 'cdc': 'c' categorical logits (K) and 's' instance factors (D). Layout
    'two': separate MLPs (the paper's ImageNet setup); 'shared': one MLP whose
    K + D outputs are split into c and s. With num_cluster_heads H > 1
    (layout 'two'), 'c_heads' (B, H, K) holds the logits of H cluster heads
    ('cluster_head', 'cluster_head_1', ...) instead of 'c'.
  - 'cc': 's' instance head and 'c' cluster logits (before the softmax), both
    Linear -> ReLU -> Linear as Contrastive Clustering's code.
  - 'cd': 's' instance projector (Linear -> BN -> ReLU -> Linear) and 'f'
    sigmoid feature predictions from a predictor on the unnormalised 's'.
  - 'instance': 's' only (the SimCLR-style baseline).

  cluster_head_input 'cd_predictions' ('cdc', layout 'two'): the cluster
  heads read CD's sigmoid feature predictions ('f') instead of the backbone
  features. The instance head and 'feature_predictor' are then a trained CD
  run's (init_from) and stay frozen like the backbone; only the cluster heads
  train. On USPS, k-means scores 0.95 on CD's predictions and 0.78 on its
  backbone features, yet CDC's heads on the predictions end at 0.81-0.88
  (README, "CDC's heads on a frozen CD backbone").
  """
  backbone: nn.Module
  num_clusters: int
  instance_dim: int
  head_hidden_dims: Sequence[int]
  head_layout: str = 'two'
  heads: str = 'cdc'
  num_features: int = 128  # F, CD's predictor heads.
  bn_groups: int = 1
  # A frozen backbone runs in inference mode (BatchNorm running statistics,
  # not updated) and passes no gradient; the optimiser leaves it alone too.
  freeze_backbone: bool = False
  # CDC with loss.contrast='moco_v3': a predictor MLP on [c; s] ('p'), as
  # MoCo v3's (Linear, BN, ReLU, Linear, BN without affine).
  predictor_hidden_dims: Sequence[int] = ()
  num_cluster_heads: int = 1
  cluster_head_input: str = 'features'
  dtype: Any = jnp.float32  # Of the heads' Dense layers; outputs are float32.

  def _cd_feature_predictions(self, s, train: bool):
    """CD's sigmoid feature predictions from the unnormalised 's' (the 'cd'
    heads, and the cluster heads' input with 'cd_predictions')."""
    return nn.sigmoid(MLPHead(
        tuple(self.head_hidden_dims), self.num_features, out_bias=False,
        out_bn=True, bn_groups=self.bn_groups, dtype=self.dtype,
        name='feature_predictor')(s, train))

  @nn.compact
  def __call__(self, x, train: bool = True, from_features: bool = False):
    """x: images, or with from_features the frozen backbone's pooled
    features of them (cdcjax.feature_cache: the heads only)."""
    if from_features:
      if not self.freeze_backbone:
        raise ValueError('from_features needs freeze_backbone=True: a '
                         'trained backbone cannot be skipped')
      features = jax.lax.stop_gradient(x)
    elif self.freeze_backbone:
      features = jax.lax.stop_gradient(self.backbone(x, False))
    else:
      features = self.backbone(x, train)
    head = functools.partial(MLPHead, self.head_hidden_dims,
                             bn_groups=self.bn_groups, dtype=self.dtype)
    out = {'features': features}
    if self.num_cluster_heads > 1 and (self.heads, self.head_layout) != (
        'cdc', 'two'):
      raise ValueError(f'num_cluster_heads={self.num_cluster_heads} needs '
                       "heads='cdc' with head_layout='two'")
    if self.cluster_head_input not in CLUSTER_HEAD_INPUTS:
      raise ValueError(f'cluster_head_input={self.cluster_head_input!r}; '
                       f'allowed: {CLUSTER_HEAD_INPUTS}')
    from_cd = self.cluster_head_input == 'cd_predictions'
    if from_cd and (self.heads, self.head_layout) != ('cdc', 'two'):
      raise ValueError("cluster_head_input='cd_predictions' needs heads='cdc' "
                       "with head_layout='two'")
    if self.heads == 'cdc' and self.head_layout == 'two':
      if from_cd:
        # CD's instance projector and feature predictor, frozen as the
        # backbone (running BatchNorm statistics, no gradient).
        out['s'] = jax.lax.stop_gradient(
            head(self.instance_dim, name='instance_head')(features, False))
        out['f'] = jax.lax.stop_gradient(
            self._cd_feature_predictions(out['s'], False))
        cluster_input = out['f']
      else:
        out['s'] = head(self.instance_dim, name='instance_head')(features,
                                                                 train)
        cluster_input = features
      if self.num_cluster_heads == 1:
        out['c'] = head(self.num_clusters, name='cluster_head')(cluster_input,
                                                                 train)
      else:
        out['c_heads'] = jnp.stack([
            head(self.num_clusters, name=cluster_head_name(h))(cluster_input,
                                                                train)
            for h in range(self.num_cluster_heads)], axis=1)
    elif self.heads == 'cdc' and self.head_layout == 'shared':
      both = head(self.num_clusters + self.instance_dim, name='head')(
          features, train)
      out['c'], out['s'] = (both[:, :self.num_clusters],
                            both[:, self.num_clusters:])
    elif self.heads == 'cdc':
      raise ValueError(
          f"model.head_layout={self.head_layout!r}; allowed: 'two', 'shared'")
    elif self.heads == 'cc':
      out['s'] = head(self.instance_dim, use_bn=False, name='instance_head')(
          features, train)
      out['c'] = head(self.num_clusters, use_bn=False, name='cluster_head')(
          features, train)
    elif self.heads == 'cd':
      out['s'] = head(self.instance_dim, name='instance_head')(features, train)
      out['f'] = self._cd_feature_predictions(out['s'], train)
    elif self.heads == 'instance':
      out['s'] = head(self.instance_dim, name='instance_head')(features, train)
    else:
      raise ValueError(f'heads={self.heads!r}; allowed: {HEADS}')
    if self.heads == 'cdc' and self.predictor_hidden_dims:
      out['p'] = MLPHead(
          tuple(self.predictor_hidden_dims),
          self.num_clusters + self.instance_dim, out_bias=False, out_bn=True,
          out_bn_affine=False, bn_groups=self.bn_groups, dtype=self.dtype,
          name='predictor')(
              jnp.concatenate([out['c'], out['s']], axis=1), train)
    return out


def make_model(model_config, num_clusters: int, heads: str = 'cdc',
               bn_groups: int = 1,
               predictor_hidden_dims=()) -> ClusteringModel:
  dtype = model_config.get('compute_dtype', 'float32')
  return ClusteringModel(
      backbone=make_backbone(model_config.backbone, model_config.width,
                             model_config.stem, bn_groups, dtype),
      dtype=compute_dtype(dtype),
      num_clusters=num_clusters,
      instance_dim=model_config.instance_dim,
      head_hidden_dims=tuple(model_config.head_hidden_dims),
      head_layout=model_config.head_layout,
      heads=heads,
      num_features=model_config.get('num_features', 128),
      bn_groups=bn_groups,
      freeze_backbone=model_config.get('freeze_backbone', False),
      predictor_hidden_dims=tuple(predictor_hidden_dims),
      num_cluster_heads=model_config.get('num_cluster_heads', 1),
      cluster_head_input=model_config.get('cluster_head_input', 'features'))
