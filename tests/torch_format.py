"""Writes files in torch.save's zip format without torch, for tests of the
reader and the converter: a pickle whose tensors name their storages by
persistent id, and each storage's raw bytes."""

import io
import pickle
import zipfile

import numpy as np

_STORAGE_NAMES = {np.dtype(np.float32): 'FloatStorage',
                  np.dtype(np.float16): 'HalfStorage',
                  np.dtype(np.float64): 'DoubleStorage',
                  np.dtype(np.int64): 'LongStorage'}


def stub(module: str, name: str):
  """A class that the pickler writes as the global module.name."""
  cls = type(name, (), {})
  cls.__module__ = module
  cls.__qualname__ = name
  return cls


_REBUILD = stub('torch._utils', '_rebuild_tensor_v2')


class Tensor:
  """A tensor as torch pickles it: a storage, an offset, a size, strides (in
  elements)."""

  def __init__(self, storage: np.ndarray, offset, size, stride):
    self.storage = storage
    self.args = (storage, offset, tuple(size), tuple(stride), False, {})

  def __reduce__(self):
    return (_REBUILD, self.args)


def tensor(array) -> Tensor:
  array = np.ascontiguousarray(array)
  strides = tuple(s // array.itemsize for s in array.strides)
  return Tensor(array.reshape(-1), 0, array.shape, strides)


def constant(shape, value, dtype=np.float32) -> Tensor:
  """A tensor of one value, stored once (zero strides): a full-size ResNet-50
  checkpoint in a few kilobytes."""
  return Tensor(np.full((1,), value, dtype), 0, shape, (0,) * len(shape))


class _Pickler(pickle._Pickler):  # pylint: disable=protected-access

  def __init__(self, file):
    super().__init__(file, protocol=2)
    self.storages = {}

  def save_global(self, obj, name=None):
    self.write(pickle.GLOBAL +
               f'{obj.__module__}\n{obj.__qualname__}\n'.encode())
    self.memoize(obj)

  def persistent_id(self, obj):
    if not isinstance(obj, np.ndarray):
      return None
    key = self.storages.setdefault(id(obj), (str(len(self.storages)), obj))[0]
    return ('storage', stub('torch', _STORAGE_NAMES[obj.dtype]), key, 'cpu',
            obj.size)


def save(obj, path: str, name: str = 'archive') -> None:
  """torch.save(obj, path) for dicts of Tensor and plain values."""
  buffer = io.BytesIO()
  pickler = _Pickler(buffer)
  pickler.dump(obj)
  with zipfile.ZipFile(path, 'w') as archive:
    archive.writestr(f'{name}/data.pkl', buffer.getvalue())
    archive.writestr(f'{name}/byteorder', 'little')
    for key, storage in pickler.storages.values():
      archive.writestr(f'{name}/data/{key}', storage.tobytes())
