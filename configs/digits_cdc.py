r"""CDC on scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes).

  python -m cdcjax.main --config=configs/digits_cdc.py --workdir=/tmp/digits_cdc

Tiny variant (CI smoke test, a few seconds):

  python -m cdcjax.main --config=configs/digits_cdc.py:tiny --workdir=/tmp/t

Trains and evaluates on all 1,797 images (there is no split: clustering is
scored on the data it was trained on, as the raw-pixel baselines below).

Expected (all 1,797 images, seeds 0, 1, 2; `python -m cdcjax.bench digits`),
measured on a 2-core x86_64 CPU with jax 0.10.2:
  ACC 0.866 +- 0.047 (0.919 / 0.874 / 0.804), NMI 0.856 +- 0.014,
  ARI 0.795 +- 0.033; wall time 229 +- 5 s per run, compilation included.
Raw-pixel anchors: k-means 0.792 ACC, Ward agglomerative 0.840.
"""

from cdcjax import config_common


def get_config(arg: str | None = None):
  config = config_common.base_config()
  config.data.name = 'digits'
  config.data.image_size = 8
  config.num_clusters = 10
  config.batch_size = 256
  config.num_epochs = 200
  config.log_every_steps = 100
  config.checkpoint_every_steps = 200

  config.model.backbone = 'resnet10'  # One block per stage: 2x faster on CPU.
  config.model.stem = 'small'
  config.model.width = 0.25
  config.model.head_hidden_dims = (256,)
  config.model.instance_dim = 64

  config.optimizer.name = 'adam'
  config.optimizer.learning_rate = 1e-3
  config.optimizer.weight_decay = 0.0

  if arg == 'tiny':
    config.model.width = 0.125
    config.model.head_hidden_dims = (32,)
    config.model.instance_dim = 16
    config.batch_size = 64
    config.eval_batch_size = 256
    config.total_steps = 12
    config.log_every_steps = 4
    config.checkpoint_every_steps = 4
  elif arg:
    raise ValueError(f"config argument {arg!r}; allowed: none or 'tiny'")
  return config
