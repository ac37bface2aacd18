r"""CDC on a folder of your own images: every .jpg/.jpeg/.png/.webp under
data.path (recursively), resized (shorter side) and centre-cropped to 32x32.

  python -m cdcjax.main --config=configs/folder_cdc.py --workdir=/tmp/my_photos \
      --config.data.path=/path/to/photos --config.num_clusters=20

Writes WORKDIR/assignments.csv (image path relative to data.path, cluster,
confidence) and WORKDIR/report/ at the end (`python -m cdcjax.cluster`
chooses a recipe from the folder instead). Files that do not decode are
skipped with one warning each. If every image sits in a class subfolder, those classes score the clustering (ACC/NMI/ARI);
otherwise only the cluster sizes are reported. Change the input size with
--config.data.image_size=64. The recipe is the CIFAR-10 one (ResNet-18, SimCLR
augmentation, SGD 0.06, batch 512) for 200 epochs: an accelerator recipe, not
measured by cdcjax. Tiny variant for smoke tests: configs/folder_cdc.py:tiny.
"""

from cdcjax import recipes


def get_config(arg: str | None = None):
  c = recipes.set_method(recipes.folder(arg), 'cdc', arg)
  c.evaluators = ('cluster_head', 'kmeans_features')  # No labels needed.
  return c
