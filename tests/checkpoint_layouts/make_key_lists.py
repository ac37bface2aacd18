r"""Writes the key lists (names, shapes, dtypes; no weights) of the ResNet-50
releases that tests/test_convert_layouts.py converts.

  pip install torch torchvision   # only for this script
  python tests/checkpoint_layouts/make_key_lists.py

Each module is built as the release's own code builds it (torchvision's
resnet50 with the release's heads, wrapped in DistributedDataParallel's
`module.` where the release saved it so) and its state_dict's names and shapes
are written, with the checkpoint entry that holds it.
"""

import json
import os

import torch
from torch import nn
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))


def resnet50(**kwargs):
  return torchvision.models.resnet50(weights=None, **kwargs)


def backbone_only():
  model = resnet50()
  model.fc = nn.Identity()
  return model


def moco_v2_encoder():
  # moco/builder.py with mlp=True: fc = Linear(2048, 2048), ReLU, old fc.
  model = resnet50(num_classes=128)
  model.fc = nn.Sequential(nn.Linear(2048, 2048), nn.ReLU(), model.fc)
  return model


class MoCoV2(nn.Module):

  def __init__(self):
    super().__init__()
    self.encoder_q = moco_v2_encoder()
    self.encoder_k = moco_v2_encoder()
    self.register_buffer('queue', torch.zeros(128, 65536))
    self.register_buffer('queue_ptr', torch.zeros(1, dtype=torch.long))


def mlp(num_layers, input_dim, mlp_dim, output_dim, last_bn=True):
  # moco-v3/moco/builder.py _build_mlp.
  layers = []
  for layer in range(num_layers):
    dim1 = input_dim if layer == 0 else mlp_dim
    dim2 = output_dim if layer == num_layers - 1 else mlp_dim
    layers.append(nn.Linear(dim1, dim2, bias=False))
    if layer < num_layers - 1:
      layers += [nn.BatchNorm1d(dim2), nn.ReLU(inplace=True)]
    elif last_bn:
      layers.append(nn.BatchNorm1d(dim2, affine=False))
  return nn.Sequential(*layers)


class MoCoV3(nn.Module):

  def __init__(self):
    super().__init__()
    self.base_encoder = resnet50()
    self.base_encoder.fc = mlp(2, 2048, 4096, 256)  # ResNet: 2 layers.
    self.momentum_encoder = resnet50()
    self.momentum_encoder.fc = mlp(2, 2048, 4096, 256)
    self.predictor = mlp(2, 256, 4096, 256, last_bn=False)


class SwAV(nn.Module):
  # swav/src/resnet50.py: no fc; projection_head and prototypes.

  def __init__(self):
    super().__init__()
    model = backbone_only()
    for name, child in model.named_children():
      if name not in ('fc',):
        self.add_module(name, child)
    self.projection_head = nn.Sequential(
        nn.Linear(2048, 2048), nn.BatchNorm1d(2048), nn.ReLU(inplace=True),
        nn.Linear(2048, 128))
    self.prototypes = nn.Linear(128, 3000, bias=False)


class BarlowTwins(nn.Module):
  # barlowtwins/main.py with --projector 8192-8192-8192.

  def __init__(self):
    super().__init__()
    self.backbone = resnet50(zero_init_residual=True)
    self.backbone.fc = nn.Identity()
    sizes = [2048, 8192, 8192, 8192]
    layers = []
    for i in range(len(sizes) - 2):
      layers += [nn.Linear(sizes[i], sizes[i + 1], bias=False),
                 nn.BatchNorm1d(sizes[i + 1]), nn.ReLU(inplace=True)]
    layers.append(nn.Linear(sizes[-2], sizes[-1], bias=False))
    self.projector = nn.Sequential(*layers)
    self.bn = nn.BatchNorm1d(sizes[-1], affine=False)


class SoloLearnBYOL(nn.Module):
  # solo-learn's BYOL (a Lightning module): online and momentum networks,
  # an online linear classifier.

  def __init__(self):
    super().__init__()
    self.backbone = backbone_only()
    self.projector = nn.Sequential(nn.Linear(2048, 4096),
                                   nn.BatchNorm1d(4096), nn.ReLU(),
                                   nn.Linear(4096, 256))
    self.predictor = nn.Sequential(nn.Linear(256, 4096),
                                   nn.BatchNorm1d(4096), nn.ReLU(),
                                   nn.Linear(4096, 256))
    self.momentum_backbone = backbone_only()
    self.momentum_projector = nn.Sequential(nn.Linear(2048, 4096),
                                            nn.BatchNorm1d(4096), nn.ReLU(),
                                            nn.Linear(4096, 256))
    self.classifier = nn.Linear(2048, 1000)


def wrapped(module):  # DistributedDataParallel's state_dict names.
  return {f'module.{k}': v for k, v in module.state_dict().items()}


# file name -> (release, layout cdcjax should recognise or None for
# --prefix, entry holding the state_dict or None, state_dict, other entries).
RELEASES = {
    'moco_v2_800ep_pretrain': (
        'MoCo v2 main_moco.py checkpoint (moco_v2_800ep_pretrain.pth.tar)',
        'moco_v2', 'state_dict', wrapped(MoCoV2()),
        {'epoch': 800, 'arch': 'resnet50', 'optimizer': {}}),
    'moco_v3_r50_1000ep': (
        'MoCo v3 main_moco.py checkpoint (r-50-1000ep.pth.tar)',
        'moco_v3', 'state_dict', wrapped(MoCoV3()),
        {'epoch': 1000, 'arch': 'resnet50', 'optimizer': {}}),
    'swav_800ep_pretrain': (
        'SwAV release (swav_800ep_pretrain.pth.tar)', 'swav', None,
        wrapped(SwAV()), {}),
    'barlow_twins_checkpoint': (
        "Barlow Twins main.py checkpoint.pth ('model' entry)",
        'barlow_twins', 'model', wrapped(BarlowTwins()),
        {'epoch': 1000, 'optimizer': {}}),
    'barlow_twins_resnet50': (
        'Barlow Twins backbone release (resnet50.pth)', 'torchvision', None,
        backbone_only().state_dict(), {}),
    'dino_resnet50_pretrain': (
        'DINO ResNet-50 backbone release (dino_resnet50_pretrain.pth)',
        'torchvision', None, backbone_only().state_dict(), {}),
    'torchvision_resnet50': (
        "torchvision's supervised resnet50 state_dict", 'torchvision', None,
        resnet50().state_dict(), {}),
    'solo_learn_byol': (
        "solo-learn BYOL Lightning checkpoint ('state_dict' entry)", None,
        'state_dict', SoloLearnBYOL().state_dict(), {'epoch': 400}),
}


def main():
  for name, (release, layout, entry, state_dict, others) in RELEASES.items():
    keys = [[k, list(v.shape), str(v.dtype).replace('torch.', '')]
            for k, v in state_dict.items()]
    header = json.dumps({'release': release, 'layout': layout,
                         'entry': entry, 'other_entries': others})
    with open(os.path.join(HERE, f'{name}.json'), 'w') as f:  # A key a line.
      f.write(header[:-1] + ', "keys": [\n' +
              ',\n'.join(json.dumps(k) for k in keys) + ']}\n')
    print(f'{name}: {len(keys)} keys')


if __name__ == '__main__':
  main()
