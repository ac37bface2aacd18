"""Reads PyTorch checkpoints (`torch.save` zip archives) without torch.

A checkpoint is a zip archive holding `<name>/data.pkl` (a pickle whose
tensors refer to storages by persistent id) and the raw little-endian bytes of
each storage in `<name>/data/<key>`. The unpickler below only builds what a
model checkpoint needs (dicts, OrderedDicts, tensors from the archive's
storages, plain Python values) and refuses every other global, so a hostile
file cannot run code. Tensors come back as NumPy arrays.
"""

import collections
import io
import pickle
import zipfile

import numpy as np

# torch storage classes -> NumPy dtypes.
_STORAGE_DTYPES = {
    'HalfStorage': np.float16, 'FloatStorage': np.float32,
    'DoubleStorage': np.float64, 'BFloat16Storage': None,  # Handled below.
    'LongStorage': np.int64, 'IntStorage': np.int32, 'ShortStorage': np.int16,
    'CharStorage': np.int8, 'ByteStorage': np.uint8, 'BoolStorage': np.bool_,
}


class NotATorchCheckpoint(ValueError):
  """The file is not a PyTorch zip checkpoint, or holds something other than
  tensors and plain values."""


class _StorageType:
  def __init__(self, name):
    self.name = name


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *unused):
  """torch._utils._rebuild_tensor_v2 for a NumPy storage."""
  del unused  # requires_grad, backward hooks, metadata.
  if not size:
    return storage[storage_offset].copy()
  itemsize = storage.dtype.itemsize
  view = np.lib.stride_tricks.as_strided(
      storage[storage_offset:], shape=tuple(size),
      strides=tuple(s * itemsize for s in stride), writeable=False)
  return np.array(view)


def _rebuild_parameter(data, *unused):
  del unused
  return data


_ALLOWED = {
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor_v2,
    ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
    ('builtins', 'set'): set,
    ('builtins', 'frozenset'): frozenset,
}


class _Unpickler(pickle.Unpickler):

  def __init__(self, file, archive: zipfile.ZipFile, prefix: str):
    super().__init__(file)
    self._archive = archive
    self._prefix = prefix
    self._storages = {}

  def find_class(self, module, name):
    if (module, name) in _ALLOWED:
      return _ALLOWED[(module, name)]
    if module == 'torch' and name in _STORAGE_DTYPES:
      return _StorageType(name)
    raise NotATorchCheckpoint(
        f'the checkpoint refers to {module}.{name}, which a plain model '
        'checkpoint does not need; refusing to load it (only tensors, dicts '
        'and plain values are read)')

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and pid and pid[0] == 'storage'):
      raise NotATorchCheckpoint(f'unknown persistent id {pid!r}')
    _, storage_type, key, _, numel = pid
    if key not in self._storages:
      raw = self._archive.read(f'{self._prefix}data/{key}')
      name = getattr(storage_type, 'name', None)
      if name == 'BFloat16Storage':
        bits = np.frombuffer(raw, '<u2').astype(np.uint32) << 16
        array = bits.view(np.float32)
      elif name in _STORAGE_DTYPES:
        array = np.frombuffer(raw, np.dtype(_STORAGE_DTYPES[name]).newbyteorder('<'))
      else:
        raise NotATorchCheckpoint(f'unsupported storage type {storage_type!r}')
      if array.size < numel:
        raise NotATorchCheckpoint(f'storage {key} holds {array.size} values, '
                                  f'expected {numel}')
      self._storages[key] = array
    return self._storages[key]


def load(path: str):
  """The object a `torch.load(path)` of a model checkpoint would give, with
  tensors as NumPy arrays."""
  try:
    archive = zipfile.ZipFile(path)
  except (zipfile.BadZipFile, IsADirectoryError) as e:
    raise NotATorchCheckpoint(
        f'{path} is not a PyTorch checkpoint (not a zip archive: {e}); '
        'legacy pre-1.6 checkpoints are not supported') from None
  with archive:
    pickles = [n for n in archive.namelist() if n.endswith('data.pkl')]
    if len(pickles) != 1:
      raise NotATorchCheckpoint(
          f'{path} is a zip archive but not a PyTorch checkpoint (it has '
          f'{len(pickles)} data.pkl entries, expected 1)')
    prefix = pickles[0][:-len('data.pkl')]
    byteorder = f'{prefix}byteorder'
    if (byteorder in archive.namelist() and
        archive.read(byteorder).strip() != b'little'):
      raise NotATorchCheckpoint(f'{path} was saved big-endian; unsupported')
    data = archive.read(pickles[0])
    try:
      return _Unpickler(io.BytesIO(data), archive, prefix).load()
    except NotATorchCheckpoint:
      raise
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError) as e:
      raise NotATorchCheckpoint(f'{path}: cannot read its pickle ({e})') from None
