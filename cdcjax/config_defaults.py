"""The defaults every config in configs/ starts from (`base_config()`); a
config overrides what differs. cdcjax/config_validation.py checks them."""

import ml_collections


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.method = 'cdc'
  c.seed = 0
  c.batch_size = 256  # Global, over all devices and hosts.
  c.num_epochs = 100
  c.total_steps = -1  # > 0: train this many steps instead of num_epochs.
  c.num_clusters = 10  # K, the cluster head's size.
  # Clusters the evaluators output (0: num_clusters). Smaller than
  # num_clusters: the head over-clusters, evaluator cluster_head_merged
  # merges its clusters down to this many and k-means uses it.
  c.eval_num_clusters = 0
  c.eval_batch_size = 512
  c.log_every_steps = 50
  c.eval_every_steps = 0  # 0: evaluate only at the end.
  c.checkpoint_every_steps = 500
  c.keep_checkpoints = 2
  # Milestones: checkpoints at multiples of this step count are kept beside
  # the newest keep_checkpoints (0: none).
  c.keep_checkpoint_every_steps = 0
  # Evaluators (cdcjax/evaluators.py); the first gives the acc/nmi/ari.
  c.evaluators = ('cluster_head',)
  # A workdir whose newest checkpoint initialises params and BatchNorm
  # statistics (the self-labeling stage starts from a trained model).
  c.init_from = ''
  # Top-level modules (e.g. ('cluster_head',)) that keep their fresh
  # initialisation instead of init_from's weights: a two-stage recipe trains
  # a new cluster head on an already trained backbone.
  c.init_fresh = ()
  # Top-level modules of init_from's checkpoint that are not loaded: another
  # method's head (CD's 'feature_predictor' under CDC's heads).
  c.init_skip = ()

  # Two stages in one run (cdcjax/stages.py): with method set (e.g.
  # 'simclr'), WORKDIR/pretrain first trains the backbone with that method
  # for total_steps steps, then this config trains from it (as init_from).
  c.pretrain = ml_collections.ConfigDict(dict(method='', total_steps=0))

  # What a run leaves for people to look at (cdcjax/report.py): the report
  # after the final evaluation, TensorBoard events when tensorboardX is
  # installed.
  c.report = ml_collections.ConfigDict()
  c.report.enabled = True
  c.report.tensorboard = True
  c.report.grid_images = 32  # Most confident images per cluster.
  c.report.strip_images = 8  # Least confident ones.
  c.report.max_clusters = 100  # The largest clusters get a grid.
  c.report.map_points = 2000  # t-SNE subsample.

  c.data = ml_collections.ConfigDict()
  c.data.name = 'digits'
  c.data.image_size = 8
  c.data.num_threads = 2  # grain reader threads for augmentation.
  # .npz file (default $CDCJAX_DATA_DIR/<name>.npz), or the image
  # directory of data.name='folder'.
  c.data.path = ''
  # Black pixels added on each side of every image before resizing to
  # image_size (digits, USPS, npz sources): frames digits that touch the
  # image border, as MNIST's are (data.pad_border). Negative: pixels trimmed
  # from each side (MNIST's empty border), checked against the image size.
  c.data.pad = 0
  # tensorflow-datasets (data.name='tfds'): dataset, label feature, data
  # directory ('' = $TFDS_DATA_DIR or ~/tensorflow_datasets) and an optional
  # class-list file (ImageNet subsets).
  c.data.tfds_name = ''
  c.data.tfds_label = 'label'
  c.data.tfds_dir = ''
  c.data.class_list = ''
  # 'train', 'test' or 'all'; any tfds split string for data.name='tfds'.
  c.data.train_split = 'all'
  c.data.eval_split = 'all'
  # Each split cut to its smallest class's count (a fixed subsample, the
  # same for every seed): separates CDC's equal-size clusters from the rest
  # (issue 31). Labelled array sources only.
  c.data.balance_classes = False
  # V >= 2 with a frozen backbone: the backbone's features of V augmented
  # views of every training image are computed once into the workdir and the
  # heads train on pairs of them (cdcjax/feature_cache.py); 0: off.
  c.data.cached_views = 0
  c.data.cached_dtype = 'float32'  # Or 'float16': half the storage.

  c.aug = ml_collections.ConfigDict()
  # cdcjax/augment.py: digits, simclr, cc, moco_v2, moco_v3, scan_strong.
  c.aug.recipe = 'digits'
  # simclr: RandomResizedCrop area range, colour strength s, blur probability.
  c.aug.crop_scale = (0.08, 1.0)
  c.aug.color_strength = 0.5
  c.aug.blur_prob = 0.0
  # Contrastive recipes: side of the resized crop (0: the input size; 224 is
  # CC's variant), evaluation images are resized to it too.
  c.aug.output_size = 0
  # Run the colour steps inside the jitted train step (on the accelerator)
  # instead of in the host workers; same distribution (tests/test_augment_jax).
  c.aug.color_on_device = False
  # digits:
  c.aug.rotation_deg = 15.0
  c.aug.scale_range = (0.85, 1.15)
  c.aug.shear_deg = 10.0
  c.aug.translate = 0.125  # Fraction of the side.
  c.aug.intensity_range = (0.6, 1.2)
  c.aug.log_gamma = 0.5
  c.aug.erase_prob = 0.5
  c.aug.erase_fraction = 0.375
  c.aug.noise_std = 0.05

  c.model = ml_collections.ConfigDict()
  c.model.backbone = 'resnet18'
  c.model.width = 1.0
  c.model.stem = 'small'
  c.model.head_layout = 'two'
  # CDC: train this many cluster heads side by side on one backbone (each
  # with its own CDC loss on [c_h; s], averaged) and predict with the one
  # whose running loss is lowest (SCAN's trick against a bad partition).
  c.model.num_cluster_heads = 1
  # CDC: what the cluster heads read. 'features': the backbone's pooled
  # output. 'cd_predictions': the sigmoid feature predictions of a trained CD
  # run (init_from), whose instance projector and feature predictor stay
  # frozen with the backbone; only the cluster heads train.
  c.model.cluster_head_input = 'features'
  c.model.head_hidden_dims = (512,)
  c.model.instance_dim = 128
  c.model.num_features = 128  # F, CD's feature-predictor heads.
  # 'global': statistics over the global batch (synchronised); 'per_device':
  # per device, as PyTorch DDP without SyncBatchNorm.
  c.model.batch_norm = 'global'
  # Keep the backbone fixed (parameters and BatchNorm statistics): the
  # ImageNet recipe trains only the heads on a converted MoCo backbone.
  c.model.freeze_backbone = False
  c.model.predictor_hidden_dims = (512,)  # MoCo v3 uses 4096.
  # Compute dtype of convolutions and Dense layers: 'bfloat16' on TPUs and
  # GPUs (the accelerator configs), 'float32' on CPUs. Parameters, optimiser
  # state, BatchNorm statistics, the model's outputs, losses, Sinkhorn and
  # metrics stay float32 either way.
  c.model.compute_dtype = 'float32'

  c.loss = ml_collections.ConfigDict()
  c.loss.temperature = 0.2  # tau, InfoNCE on [c_hat; s_hat].
  c.loss.cluster_temperature = 0.1  # tau_c, softmax(c_hat / tau_c).
  c.loss.equipartition_weight = 1.0  # lambda.
  # lambda ramps linearly from 0 over this fraction of the steps (0: off).
  c.loss.equipartition_warmup_fraction = 0.0
  c.loss.sinkhorn_epsilon = 0.05
  c.loss.sinkhorn_iters = 3
  c.loss.sinkhorn_target = 'swapped'
  # 1: the paper's exact equipartition of every batch. < 1: unbalanced
  # Sinkhorn, cluster sizes may follow the data (imbalanced classes; with
  # exactly equal clusters USPS test ACC cannot exceed 0.89).
  c.loss.sinkhorn_balance = 1.0
  # From this fraction of the steps on, the balance is sinkhorn_balance_final
  # (1: never). USPS: a one-to-one partition forms under the near-equal sizes
  # of balance 0.5, then 0.1 lets each cluster grow to its class's size.
  c.loss.sinkhorn_balance_final_from = 1.0
  c.loss.sinkhorn_balance_final = 1.0
  # 'log': Sinkhorn in the log domain (stable). 'exp': SwAV's exp(S / eps),
  # which overflows to NaN without normalisation of c (the paper's ablation).
  c.loss.sinkhorn_arithmetic = 'log'
  c.loss.normalize_c = True
  c.loss.use_infonce = True
  # L2-normalise [c_hat; s_hat] again before the InfoNCE (Lightly's NT-Xent,
  # which the paper's code is based on; = InfoNCE at 2 tau). Open: issue 31.
  c.loss.renormalize_concat = False
  c.loss.use_equipartition = True
  # 'in_batch': the paper's InfoNCE over the 2B views. 'moco_v3': MoCo v3's
  # contrast (online predictor vs momentum-head keys, global in-batch
  # negatives, symmetric, x 2 tau); momentum loss.momentum raised to 1 by a
  # half cosine; predictor MLP model.predictor_hidden_dims. CDC only.
  c.loss.contrast = 'in_batch'
  c.loss.momentum = 0.99
  # Every method's instance contrast on more than one device: True computes
  # each shard's similarity rows against the all-gathered batch (gradient
  # reduce-scattered); False leaves the dense 2B x 2B matrix to the compiler
  # (its backward all-reduces the (2B, D) gradient). Same value either way.
  c.loss.sharded_contrast = True

  # The peers' hyperparameters (their papers' defaults).
  c.cc = ml_collections.ConfigDict(dict(
      instance_temperature=0.5, cluster_temperature=1.0, entropy_weight=1.0))
  c.cd = ml_collections.ConfigDict(dict(
      instance_temperature=0.5, feature_temperature=1.0, entropy_weight=1.0))
  c.simclr = ml_collections.ConfigDict(dict(temperature=0.5))
  c.self_label = ml_collections.ConfigDict(dict(
      source_method='cdc', threshold=0.99, class_balance=True))

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = 'sgd'
  c.optimizer.learning_rate = 0.06  # Peak, for the global batch size.
  c.optimizer.momentum = 0.9
  c.optimizer.nesterov = False
  c.optimizer.weight_decay = 5e-4
  c.optimizer.warmup_fraction = 0.05  # Linear warm-up, then cosine to 0.
  c.optimizer.trust_coefficient = 0.001  # LARS (MoCo v3's value).
  return c
