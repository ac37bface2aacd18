"""The methods: which heads each one trains, its loss, and its cluster logits.

  cdc        CDC: cluster logits c and instance factors s, InfoNCE on
             [c_hat; s_hat] plus the Sinkhorn equipartition term.
  cc         Contrastive Clustering: instance NT-Xent, cluster-column contrast
             and the marginal-entropy term.
  cd         Contrastive Disentangling: instance NT-Xent, feature-column
             contrast and the normalised binary entropy (no K in training).
  simclr     Instance-only contrastive baseline (NT-Xent), clustered by k-means.
  selflabel  SCAN's self-labeling stage on the cluster head of a trained CDC or
             CC model (`init_from`); view a is the weak (evaluation) view and
             view b the strong one.

Every loss function returns a dict of scalars whose 'loss' entry is minimised;
the others are logged.
"""

import functools

import jax
import jax.numpy as jnp

from cdcjax import losses
from cdcjax import models

METHODS = ('cdc', 'cc', 'cd', 'simclr', 'selflabel')
SELF_LABEL_SOURCES = ('cdc', 'cc')  # Methods with a cluster head.


def heads(config) -> str:
  """The head set (models.HEADS) a method trains."""
  if config.method == 'selflabel':
    return config.self_label.source_method
  return {'cdc': 'cdc', 'cc': 'cc', 'cd': 'cd', 'simclr': 'instance'}[
      config.method]


def has_cluster_head(config) -> bool:
  return heads(config) in ('cdc', 'cc')


def uses_momentum_heads(config) -> bool:
  """CDC with MoCo v3's contrast: a predictor and momentum (EMA) heads."""
  return config.method == 'cdc' and config.loss.contrast == 'moco_v3'


def momentum(config, progress):
  """MoCo v3's momentum, raised from loss.momentum to 1 by a half cosine."""
  m0 = config.loss.momentum
  return 1.0 - (1.0 - m0) * (jnp.cos(jnp.pi * progress) + 1.0) / 2.0


def make_model(config, bn_groups: int = 1) -> models.ClusteringModel:
  predictor = (config.model.predictor_hidden_dims
               if uses_momentum_heads(config) else ())
  return models.make_model(config.model, config.num_clusters, heads(config),
                           bn_groups, predictor_hidden_dims=predictor)


def cluster_logits(config, outputs: dict) -> jax.Array:
  """Logits whose softmax is the method's cluster posterior.

  CDC: p = softmax(c_hat / tau_c) (the paper's prediction); CC: the cluster
  head before its softmax.
  """
  kind = heads(config)
  if kind == 'cdc':
    c = outputs['c'].astype(jnp.float32)
    if config.loss.normalize_c:
      c = losses.l2_normalize(c)
    return c / config.loss.cluster_temperature
  if kind == 'cc':
    return outputs['c'].astype(jnp.float32)
  raise ValueError(f'method {config.method!r} has no cluster head')


def selected_head(head_losses):
  """Index of the cluster head that predicts (model.num_cluster_heads > 1):
  the one with the lowest average loss. The trainer, the evaluation record
  and the hand-over to self-labeling all use this rule."""
  return jnp.argmin(jnp.asarray(head_losses))


def equipartition_weight(config, progress=None):
  """lambda, ramped linearly from 0 over the first
  `loss.equipartition_warmup_fraction` of training (progress in [0, 1])."""
  lam = config.loss.equipartition_weight
  warmup = config.loss.equipartition_warmup_fraction
  if warmup <= 0 or progress is None:
    return lam
  return lam * jnp.clip(progress / warmup, 0.0, 1.0)


def sinkhorn_balance(config, progress=None):
  """The unbalanced-Sinkhorn balance: `loss.sinkhorn_balance`, then
  `loss.sinkhorn_balance_final` from progress `loss.sinkhorn_balance_final_from`
  on (progress in [0, 1], may be traced)."""
  lc = config.loss
  if (progress is None or lc.sinkhorn_balance_final_from >= 1
      or lc.sinkhorn_balance_final == lc.sinkhorn_balance):
    return lc.sinkhorn_balance
  return jnp.where(progress >= lc.sinkhorn_balance_final_from,
                   lc.sinkhorn_balance_final, lc.sinkhorn_balance)


def loss(config, out_a: dict, out_b: dict, progress=None,
         momentum_outputs=None, mesh=None) -> dict:
  """The method's loss on the outputs for views a and b of one global batch.

  `progress` (step / total steps, may be traced) drives loss schedules.
  `momentum_outputs`: the momentum heads' outputs for views a and b, when
  uses_momentum_heads(config).
  `mesh`: the mesh sharding the batch; the instance contrasts then run per
  shard (losses.info_nce). None: the compiler partitions them.
  """
  method = config.method
  extra_metrics = {}
  if method == 'cdc':
    lc = config.loss
    moco = {}
    if uses_momentum_heads(config):
      moco = dict(predictions=(out_a['p'], out_b['p']),
                  momentum_keys=[(o['c'], o['s']) for o in momentum_outputs])
    cdc = functools.partial(
        losses.cdc_loss,
        temperature=lc.temperature, cluster_temperature=lc.cluster_temperature,
        equipartition_weight=equipartition_weight(config, progress),
        sinkhorn_epsilon=lc.sinkhorn_epsilon, sinkhorn_iters=lc.sinkhorn_iters,
        sinkhorn_target=lc.sinkhorn_target,
        sinkhorn_balance=sinkhorn_balance(config, progress),
        sinkhorn_arithmetic=lc.sinkhorn_arithmetic, normalize_c=lc.normalize_c,
        use_infonce=lc.use_infonce, use_equipartition=lc.use_equipartition,
        renormalize_concat=lc.renormalize_concat, mesh=mesh, **moco)
    # The largest raw cluster logit, logged: with loss.normalize_c=False it
    # grows, and SwAV's exp Sinkhorn overflows once it exceeds 88.7 * eps.
    c_key = 'c_heads' if 'c_heads' in out_a else 'c'
    c_max_abs = jax.lax.stop_gradient(jnp.maximum(
        jnp.max(jnp.abs(out_a[c_key])), jnp.max(jnp.abs(out_b[c_key])))
                                      ).astype(jnp.float32)
    extra_metrics = {'c_max_abs': c_max_abs}
    if c_key == 'c_heads':
      return {**_multi_head_cdc_loss(cdc, out_a, out_b), **extra_metrics}
    result = cdc(out_a['c'], out_a['s'], out_b['c'], out_b['s'])
  elif method == 'cc':
    result = losses.cc_loss(
        out_a['s'], out_b['s'], jax.nn.softmax(out_a['c'].astype(jnp.float32)),
        jax.nn.softmax(out_b['c'].astype(jnp.float32)),
        instance_temperature=config.cc.instance_temperature,
        cluster_temperature=config.cc.cluster_temperature,
        entropy_weight=config.cc.entropy_weight, mesh=mesh)
  elif method == 'cd':
    result = losses.cd_loss(
        out_a['s'], out_b['s'], out_a['f'].astype(jnp.float32),
        out_b['f'].astype(jnp.float32),
        instance_temperature=config.cd.instance_temperature,
        feature_temperature=config.cd.feature_temperature,
        entropy_weight=config.cd.entropy_weight, mesh=mesh)
  elif method == 'simclr':
    return {'loss': losses.nt_xent(out_a['s'], out_b['s'],
                                   config.simclr.temperature, mesh)}
  elif method == 'selflabel':
    result = losses.self_label_loss(
        cluster_logits(config, out_a), cluster_logits(config, out_b),
        threshold=config.self_label.threshold,
        class_balance=config.self_label.class_balance)
  else:
    raise ValueError(f'config.method={method!r}; allowed: {METHODS}')
  values = result._asdict()
  return {'loss': values.pop('total'), **values, **extra_metrics}


def _multi_head_cdc_loss(cdc, out_a: dict, out_b: dict) -> dict:
  """One CDC loss per cluster head (each on [c_h; s], s shared), averaged so
  the backbone and s see the gradient scale of one head. 'head_losses' (H,)
  is each head's total, from which the trainer picks the prediction head."""
  per_head = [cdc(out_a['c_heads'][:, h], out_a['s'], out_b['c_heads'][:, h],
                  out_b['s'])._asdict()
              for h in range(out_a['c_heads'].shape[1])]
  mean = {k: jnp.mean(jnp.stack([p[k] for p in per_head]))
          for k in per_head[0]}
  return {'loss': mean.pop('total'), **mean,
          'head_losses': jnp.stack([p['total'] for p in per_head])}
