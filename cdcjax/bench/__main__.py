"""python -m cdcjax.bench: the benchmarks of cdcjax/bench/__init__.py."""

from absl import app

from cdcjax import bench

__doc__ = bench.__doc__  # What --help prints.

if __name__ == '__main__':
  app.run(bench.main)
