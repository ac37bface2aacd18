"""Flax Linen ResNets in torchvision layout, MLP heads and the clustering model.

Layout follows torchvision so PyTorch checkpoints map one-to-one: explicit
symmetric padding (Flax 'SAME' pads stride-2 convolutions asymmetrically), the
stride of a bottleneck on its 3x3 conv (ResNet v1.5), BatchNorm eps 1e-5 and
momentum 0.1 (Flax momentum 0.9), no conv biases.
"""

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

BatchNorm = functools.partial(nn.BatchNorm, momentum=0.9, epsilon=1e-5)


def _pad(k: int) -> tuple[tuple[int, int], tuple[int, int]]:
  return ((k // 2, k // 2), (k // 2, k // 2))


class BasicBlock(nn.Module):
  features: int
  strides: int = 1
  expansion = 1

  @nn.compact
  def __call__(self, x, train: bool):
    norm = functools.partial(BatchNorm, use_running_average=not train)
    residual = x
    y = nn.Conv(self.features, (3, 3), self.strides, padding=_pad(3),
                use_bias=False, name='conv1')(x)
    y = nn.relu(norm(name='bn1')(y))
    y = nn.Conv(self.features, (3, 3), 1, padding=_pad(3), use_bias=False,
                name='conv2')(y)
    y = norm(name='bn2')(y)
    if residual.shape != y.shape:
      residual = nn.Conv(self.features, (1, 1), self.strides, use_bias=False,
                         name='downsample_conv')(x)
      residual = norm(name='downsample_bn')(residual)
    return nn.relu(y + residual)


class Bottleneck(nn.Module):
  features: int
  strides: int = 1
  expansion = 4

  @nn.compact
  def __call__(self, x, train: bool):
    norm = functools.partial(BatchNorm, use_running_average=not train)
    residual = x
    y = nn.Conv(self.features, (1, 1), use_bias=False, name='conv1')(x)
    y = nn.relu(norm(name='bn1')(y))
    y = nn.Conv(self.features, (3, 3), self.strides, padding=_pad(3),
                use_bias=False, name='conv2')(y)
    y = nn.relu(norm(name='bn2')(y))
    y = nn.Conv(self.features * 4, (1, 1), use_bias=False, name='conv3')(y)
    y = norm(name='bn3')(y)
    if residual.shape != y.shape:
      residual = nn.Conv(self.features * 4, (1, 1), self.strides,
                         use_bias=False, name='downsample_conv')(x)
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
  """
  stage_sizes: Sequence[int]
  block: Any
  width: float = 1.0
  stem: str = 'imagenet'

  @nn.compact
  def __call__(self, x, train: bool = True):
    base = max(1, int(round(64 * self.width)))
    norm = functools.partial(BatchNorm, use_running_average=not train)
    if self.stem == 'imagenet':
      x = nn.Conv(base, (7, 7), 2, padding=_pad(7), use_bias=False,
                  name='conv1')(x)
      x = nn.relu(norm(name='bn1')(x))
      x = nn.max_pool(x, (3, 3), (2, 2), padding=_pad(3))
    elif self.stem == 'small':
      x = nn.Conv(base, (3, 3), 1, padding=_pad(3), use_bias=False,
                  name='conv1')(x)
      x = nn.relu(norm(name='bn1')(x))
    else:
      raise ValueError(f"stem={self.stem!r}; allowed: 'imagenet', 'small'")
    for i, num_blocks in enumerate(self.stage_sizes):
      for j in range(num_blocks):
        strides = 2 if i > 0 and j == 0 else 1
        x = self.block(base * 2**i, strides, name=f'layer{i + 1}_{j}')(x, train)
    return jnp.mean(x, axis=(1, 2))


ARCHITECTURES = {
    'resnet10': ((1, 1, 1, 1), BasicBlock),  # For tiny images on a CPU.
    'resnet18': ((2, 2, 2, 2), BasicBlock),
    'resnet34': ((3, 4, 6, 3), BasicBlock),
    'resnet50': ((3, 4, 6, 3), Bottleneck),
}


def make_backbone(name: str, width: float = 1.0, stem: str = 'imagenet'):
  if name not in ARCHITECTURES:
    raise ValueError(f'model.backbone={name!r}; allowed: {sorted(ARCHITECTURES)}')
  stage_sizes, block = ARCHITECTURES[name]
  return ResNet(stage_sizes, block, width=width, stem=stem)


class MLPHead(nn.Module):
  """Linear -> BN -> ReLU -> ... -> Linear (SimCLR's projection head shape)."""
  hidden_dims: Sequence[int]
  out_dim: int
  use_bn: bool = True

  @nn.compact
  def __call__(self, x, train: bool = True):
    for i, dim in enumerate(self.hidden_dims):
      x = nn.Dense(dim, use_bias=not self.use_bn, name=f'fc{i}')(x)
      if self.use_bn:
        x = BatchNorm(use_running_average=not train, name=f'bn{i}')(x)
      x = nn.relu(x)
    return nn.Dense(self.out_dim, name=f'fc{len(self.hidden_dims)}')(x)


class ClusteringModel(nn.Module):
  """Backbone plus the CDC heads: categorical logits c (K) and factors s (D).

  head_layout 'two': separate MLPs for c and s (the paper's ImageNet setup);
  'shared': one MLP whose K + D outputs are split into c and s.
  """
  backbone: nn.Module
  num_clusters: int
  instance_dim: int
  head_hidden_dims: Sequence[int]
  head_layout: str = 'two'

  @nn.compact
  def __call__(self, x, train: bool = True):
    features = self.backbone(x, train)
    if self.head_layout == 'two':
      c = MLPHead(self.head_hidden_dims, self.num_clusters,
                  name='cluster_head')(features, train)
      s = MLPHead(self.head_hidden_dims, self.instance_dim,
                  name='instance_head')(features, train)
    elif self.head_layout == 'shared':
      out = MLPHead(self.head_hidden_dims,
                    self.num_clusters + self.instance_dim,
                    name='head')(features, train)
      c, s = out[:, :self.num_clusters], out[:, self.num_clusters:]
    else:
      raise ValueError(
          f"model.head_layout={self.head_layout!r}; allowed: 'two', 'shared'")
    return {'features': features, 'c': c, 's': s}


def make_model(model_config, num_clusters: int) -> ClusteringModel:
  return ClusteringModel(
      backbone=make_backbone(model_config.backbone, model_config.width,
                             model_config.stem),
      num_clusters=num_clusters,
      instance_dim=model_config.instance_dim,
      head_hidden_dims=tuple(model_config.head_hidden_dims),
      head_layout=model_config.head_layout)
