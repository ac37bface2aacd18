"""The training step of a CDC config in PyTorch, beside cdcjax's, on the same
device in the same run.

  pip install -e '.[bench]'     # torch and torchvision, for this only
  python -m cdcjax.bench step --config=configs/cifar10_cdc.py \
      --override=batch_size=64 --override=model.compute_dtype=float32 \
      --against=torch

The PyTorch side is built from the config as cdcjax builds its model:
torchvision's ResNet (stem 'small': a 3x3 stride-1 conv and no max-pool),
the two MLP heads (Linear without bias, BatchNorm, ReLU per hidden layer, then
Linear with bias), CDC's loss written from the same definition
(cdcjax.losses.cdc_loss: InfoNCE over [c_hat; s_hat] of the 2B views, log-
domain Sinkhorn codes under no_grad, swapped or same targets), and the
config's optimiser (SGD with momentum and weight decay, or Adam/AdamW) at a
constant learning rate (a schedule does not change a step's cost). bfloat16
compute is torch.autocast. Eager mode, NCHW, torch's default threads: what a
PyTorch research script runs. The two loss values on the same random head
outputs are printed as a check that both sides compute the same objective.
Both steps are timed on the same fixed batch, `rounds` times alternately,
and the medians compared; so is the inference forward of the two views
(cdcjax's embed step), which tells the forward's share of a gap from the
backward's.
"""

import math
import statistics
import time

import numpy as np

SUPPORTED_OPTIMIZERS = ('sgd', 'adam', 'adamw')


def _check(config):
  problems = []
  if config.method != 'cdc':
    problems.append(f"method={config.method!r} (only 'cdc')")
  model = config.model
  if model.width != 1.0:
    problems.append(f'model.width={model.width} (torchvision: 1.0 only)')
  if model.head_layout != 'two':
    problems.append(f"model.head_layout={model.head_layout!r} (only 'two')")
  if model.get('num_cluster_heads', 1) != 1:
    problems.append('model.num_cluster_heads != 1')
  if model.get('cluster_head_input', 'features') != 'features':
    problems.append("model.cluster_head_input != 'features'")
  if config.loss.contrast != 'in_batch':
    problems.append(f"loss.contrast={config.loss.contrast!r} (only "
                    "'in_batch')")
  if config.optimizer.name not in SUPPORTED_OPTIMIZERS:
    problems.append(f'optimizer.name={config.optimizer.name!r} (allowed: '
                    f'{SUPPORTED_OPTIMIZERS})')
  if config.get('data', {}).get('cached_views', 0):
    problems.append('data.cached_views (the step has no backbone)')
  if problems:
    raise ValueError('--against=torch builds CDC with a torchvision ResNet '
                     'and two MLP heads; this config has ' +
                     '; '.join(problems))


def _modules(config, channels: int):
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  from torchvision.models import resnet  # pylint: disable=g-import-not-at-top
  blocks = {'resnet10': (resnet.BasicBlock, [1, 1, 1, 1]),
            'resnet18': (resnet.BasicBlock, [2, 2, 2, 2]),
            'resnet34': (resnet.BasicBlock, [3, 4, 6, 3]),
            'resnet50': (resnet.Bottleneck, [3, 4, 6, 3])}
  block, layers = blocks[config.model.backbone]
  backbone = resnet.ResNet(block, layers)
  if config.model.stem == 'small':
    backbone.conv1 = nn.Conv2d(channels, 64, 3, 1, 1, bias=False)
    backbone.maxpool = nn.Identity()
  elif channels != 3:
    backbone.conv1 = nn.Conv2d(channels, 64, 7, 2, 3, bias=False)
  features = backbone.fc.in_features
  backbone.fc = nn.Identity()

  def head(out_dim):
    layers, width = [], features
    for hidden in config.model.head_hidden_dims:
      layers += [nn.Linear(width, hidden, bias=False), nn.BatchNorm1d(hidden),
                 nn.ReLU()]
      width = hidden
    return nn.Sequential(*layers, nn.Linear(width, out_dim))

  return torch.nn.ModuleDict({
      'backbone': backbone, 'cluster_head': head(config.num_clusters),
      'instance_head': head(config.model.instance_dim)})


def _sinkhorn(scores, epsilon, iters):
  import torch  # pylint: disable=g-import-not-at-top
  with torch.no_grad():
    batch, clusters = scores.shape
    log_q = scores.float() / epsilon
    log_q = log_q - torch.logsumexp(log_q.flatten(), 0)
    log_v = torch.zeros(clusters, device=scores.device)
    for _ in range(iters):
      mass = torch.logsumexp(log_q, 0) - log_v
      new_log_v = -math.log(clusters) - mass
      log_q = log_q + (new_log_v - log_v)[None]
      log_q = log_q - torch.logsumexp(log_q, 1, keepdim=True) - math.log(batch)
      log_v = new_log_v
    return torch.exp(log_q + math.log(batch))


def cdc_loss_torch(c_a, s_a, c_b, s_b, loss):
  """cdcjax.losses.cdc_loss (normalised c, in-batch InfoNCE, log Sinkhorn,
  exact equipartition) in PyTorch."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch.nn import functional as F  # pylint: disable=g-import-not-at-top
  c_a, c_b, s_a, s_b = (F.normalize(x.float(), dim=1)
                        for x in (c_a, c_b, s_a, s_b))
  z = torch.cat([torch.cat([c_a, s_a], 1), torch.cat([c_b, s_b], 1)], 0)
  if loss.renormalize_concat:
    z = F.normalize(z, dim=1)
  batch = c_a.shape[0]
  logits = z @ z.T / loss.temperature
  logits = logits.masked_fill(torch.eye(2 * batch, dtype=torch.bool,
                                        device=z.device), float('-inf'))
  positive = torch.cat([torch.arange(batch) + batch, torch.arange(batch)])
  infonce = F.cross_entropy(logits, positive.to(z.device))
  q_a = _sinkhorn(c_a, loss.sinkhorn_epsilon, loss.sinkhorn_iters)
  q_b = _sinkhorn(c_b, loss.sinkhorn_epsilon, loss.sinkhorn_iters)
  if loss.sinkhorn_target == 'swapped':
    q_a, q_b = q_b, q_a
  log_p_a = F.log_softmax(c_a / loss.cluster_temperature, 1)
  log_p_b = F.log_softmax(c_b / loss.cluster_temperature, 1)
  equipartition = -0.5 * ((q_a * log_p_a).sum(1).mean() +
                          (q_b * log_p_b).sum(1).mean())
  return infonce + loss.equipartition_weight * equipartition


def loss_agreement(config, seed: int = 0) -> tuple[float, float]:
  """(cdcjax's, PyTorch's) CDC loss on the same random head outputs."""
  import torch  # pylint: disable=g-import-not-at-top
  from cdcjax import losses  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  b, k, d = 32, config.num_clusters, config.model.instance_dim
  c_a, c_b = rng.normal(size=(2, b, k)).astype(np.float32)
  s_a, s_b = rng.normal(size=(2, b, d)).astype(np.float32)
  loss = config.loss
  ours = losses.cdc_loss(
      c_a, s_a, c_b, s_b, temperature=loss.temperature,
      cluster_temperature=loss.cluster_temperature,
      equipartition_weight=loss.equipartition_weight,
      sinkhorn_epsilon=loss.sinkhorn_epsilon,
      sinkhorn_iters=loss.sinkhorn_iters,
      sinkhorn_target=loss.sinkhorn_target,
      renormalize_concat=loss.renormalize_concat).total
  theirs = cdc_loss_torch(*(torch.from_numpy(a) for a in (c_a, s_a, c_b, s_b)),
                          loss)
  return float(ours), float(theirs)


def _optimizer(config, parameters):
  import torch  # pylint: disable=g-import-not-at-top
  opt = config.optimizer
  if opt.name == 'sgd':
    return torch.optim.SGD(parameters, lr=opt.learning_rate,
                           momentum=opt.momentum, nesterov=opt.nesterov,
                           weight_decay=opt.weight_decay)
  cls = torch.optim.Adam if opt.name == 'adam' else torch.optim.AdamW
  return cls(parameters, lr=opt.learning_rate,
             weight_decay=opt.get('weight_decay', 0.0))


def torch_step_fn(config, batch: dict):
  """Functions running one PyTorch training step on `batch` (NHWC host
  arrays) and the inference forward of its two views, and the device."""
  import torch  # pylint: disable=g-import-not-at-top
  _check(config)
  device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
  channels = batch['view_a'].shape[-1]
  model = _modules(config, channels).to(device)
  frozen = bool(config.model.freeze_backbone)
  if frozen:
    model['backbone'].eval().requires_grad_(False)
  trainable = [p for p in model.parameters() if p.requires_grad]
  optimizer = _optimizer(config, trainable)
  views = [torch.from_numpy(np.ascontiguousarray(
      batch[v].transpose(0, 3, 1, 2))).to(device)
           for v in ('view_a', 'view_b')]
  bf16 = config.model.compute_dtype == 'bfloat16'

  def step():
    outputs = []
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
      for x in views:  # Separately (BatchNorm per view), as cdcjax does.
        with torch.set_grad_enabled(not frozen):
          h = model['backbone'](x)
        outputs += [model['cluster_head'](h), model['instance_head'](h)]
    loss = cdc_loss_torch(*outputs, config.loss)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss

  def synchronized():
    loss = step()
    if device.type == 'cuda':
      torch.cuda.synchronize()
    return float(loss.detach())

  def forward():  # Inference of both views: the step without its backward.
    model.eval()
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16,
                                         enabled=bf16):
      for x in views:
        h = model['backbone'](x)
        out = (model['cluster_head'](h), model['instance_head'](h))
    model.train()
    if frozen:
      model['backbone'].eval()
    if device.type == 'cuda':
      torch.cuda.synchronize()
    return out

  return synchronized, forward, device


def time_steps(run, steps: int, warmup: int) -> float:
  """Seconds per step of `run` (which blocks until its step is done)."""
  for _ in range(warmup):
    run()
  start = time.perf_counter()
  for _ in range(steps):
    run()
  return (time.perf_counter() - start) / steps


def compare(runs: dict, batch_size: int, steps: int, warmup: int,
            rounds: int) -> dict:
  """runs: name -> (cdcjax function, PyTorch function). Each pair is timed
  `rounds` times alternately (drifts in the machine hit both); the medians'
  images/s and their ratio, per name."""
  result = {}
  for name, (jax_run, torch_run) in runs.items():
    jax_s, torch_s = [], []
    for _ in range(rounds):
      jax_s.append(time_steps(jax_run, steps, warmup))
      torch_s.append(time_steps(torch_run, steps, warmup))
    jax_ips = batch_size / statistics.median(jax_s)
    torch_ips = batch_size / statistics.median(torch_s)
    result[name] = {
        'cdcjax_images_per_sec': jax_ips, 'torch_images_per_sec': torch_ips,
        'cdcjax_over_torch': jax_ips / torch_ips,
        'cdcjax_round_images_per_sec': [batch_size / s for s in jax_s],
        'torch_round_images_per_sec': [batch_size / s for s in torch_s]}
  return result
