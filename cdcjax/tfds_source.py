"""tensorflow-datasets as a random-access source (`tfds.data_source`, ArrayRecord
files; no TensorFlow at run time).

  data.name='tfds', data.tfds_name='cifar100', data.tfds_label='coarse_label',
  data.train_split='train', data.eval_split='test', data.tfds_dir=DIR

Images are decoded per example (in the grain workers while training), their
shorter side resized to data.image_size and centre-cropped. Splits are tfds
split strings ('train', 'train+unlabelled', 'test[:10%]'). data.class_list
names a file of class names (one per line, e.g. ImageNet WordNet ids) to keep
only those classes, relabelled 0..n-1 in the file's order.
"""

import os

from absl import logging
import numpy as np

from cdcjax import folders


def _fail_unprepared(name: str, data_dir: str | None, detail: str):
  where = data_dir or os.environ.get('TFDS_DATA_DIR', '~/tensorflow_datasets')
  raise FileNotFoundError(
      f'data.tfds_name={name!r} is not prepared in {where} ({detail}). '
      f'Prepare it once with tfds (`tfds build {name} --data_dir={where} '
      '--file_format=array_record`, or `tfds.builder(name, data_dir=...)'
      '.download_and_prepare(file_format="array_record")`; ImageNet needs '
      'its archives in the manual directory first), then set '
      'data.tfds_dir or $TFDS_DATA_DIR')


def check_prepared(name: str, data_dir: str | None) -> None:
  """Fails, naming how to prepare it, unless tfds has `name` prepared."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  try:
    builder = tfds.builder(name, data_dir=data_dir or None)
  except tfds.core.registered.DatasetNotFoundError:
    raise FileNotFoundError(
        f'data.tfds_name={name!r} is not a tensorflow-datasets dataset (see '
        'https://www.tensorflow.org/datasets/catalog/overview)') from None
  if not builder.is_prepared():
    _fail_unprepared(name, data_dir, 'no prepared version found')


def read_class_list(path: str) -> list[str]:
  with open(path) as f:
    names = [line.split()[0] for line in f if line.strip()]
  if not names:
    raise ValueError(f'data.class_list={path!r} lists no class')
  return names


class TfdsSource:
  """The interface of data.ArraySource over a tfds data source."""

  def __init__(self, name: str, split: str, *, image_size: int,
               label_key: str = 'label', data_dir: str | None = None,
               class_list: str = ''):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    self.name = f'{name}:{split}'
    self.image_size = image_size
    self.paths = None
    self._source = tfds.data_source(name, split=split,
                                    data_dir=data_dir or None)
    features = self._source.dataset_info.features
    if label_key not in features:
      raise ValueError(f'data.tfds_label={label_key!r}: {name} has features '
                       f'{sorted(features.keys())}')
    self._label_key = label_key
    self._name, self._split, self._data_dir = name, split, data_dir or None
    self.num_classes = features[label_key].num_classes
    self.class_names = tuple(getattr(features[label_key], 'names', ()) or
                             ()) or None
    self._relabel = None
    self._indices = None
    self._labels = None
    if class_list:
      names = features[label_key].names
      wanted = read_class_list(class_list)
      missing = [c for c in wanted if c not in names]
      if missing:
        raise ValueError(f'data.class_list={class_list!r}: {len(missing)} '
                         f'classes are not in {name} (first: {missing[:3]})')
      self._relabel = np.full(len(names), -1, np.int64)
      self._relabel[[names.index(c) for c in wanted]] = np.arange(len(wanted))
      all_labels = self._read_all_labels()
      self._indices = np.flatnonzero(
          (all_labels >= 0) & (self._relabel[np.maximum(all_labels, 0)] >= 0))
      self._labels = self._relabel[all_labels[self._indices]]
      self.num_classes = len(wanted)
      self.class_names = tuple(wanted)

  def _read_all_labels(self) -> np.ndarray:
    """Every example's label; without decoding images where tfds can."""
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    try:
      reader = tfds.data_source(
          self._name, split=self._split, data_dir=self._data_dir,
          decoders={'image': tfds.decode.SkipDecoding()})
      return np.array([reader[i][self._label_key]
                       for i in range(len(reader))], np.int64)
    except ImportError:
      # Skipping the decoder needs TensorFlow in some tfds versions (and in
      # tfds' mock data); decoding every image gives the same labels, slower.
      logging.info('%s: reading labels by decoding every example',
                   self.name)
      return np.array([self._source[i][self._label_key]
                       for i in range(len(self._source))], np.int64)

  @property
  def labels(self) -> np.ndarray:
    """Labels of every example (STL-10's unlabelled split: -1), read on first
    use: training alone never needs them."""
    if self._labels is None:
      self._labels = self._read_all_labels()
    return self._labels

  def __len__(self):
    return len(self._source) if self._indices is None else len(self._indices)

  def _record(self, i) -> tuple[np.ndarray, int]:
    key = int(i) if self._indices is None else int(self._indices[i])
    record = self._source[key]
    image = np.asarray(record['image'])
    if image.ndim == 2:
      image = image[..., None]
    label = int(record[self._label_key])
    if self._relabel is not None:
      label = int(self._relabel[label])
    return folders.fit_square(image, self.image_size), label

  def read(self, indices) -> np.ndarray:
    """Float images in [0, 1], (len(indices), S, S, C)."""
    return np.stack([self._record(i)[0] for i in indices]).astype(
        np.float32) / 255.0

  def __getitem__(self, index):
    image, label = self._record(index)
    return {'image': image.astype(np.float32) / 255.0,
            'label': np.int64(label), 'index': np.int64(index)}
