"""Test setup: 8 fake CPU devices, so multi-device code runs on any machine."""

import atexit
import os
import shutil
import sys
import tempfile

os.environ.setdefault('JAX_NUM_CPU_DEVICES', '8')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
# Many tests (and the command-line subprocesses, which inherit this) compile
# the same tiny train step: a per-session persistent cache compiles it once.
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  _cache_dir = tempfile.mkdtemp(prefix='cdcjax_test_jax_cache_')
  os.environ['JAX_COMPILATION_CACHE_DIR'] = _cache_dir
  # Up to ~20 MB a session; without this every run left one behind in /tmp.
  atexit.register(shutil.rmtree, _cache_dir, ignore_errors=True)
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0.5')
# Tests run tiny models, where XLA's CPU compile time dominates: skipping
# LLVM's optimisation passes made test_init_fresh 3.6x faster on a 2-core CPU
# (156 s -> 46 s). Results are still checked to the same tolerances. A user's
# own XLA_FLAGS win.
os.environ.setdefault('XLA_FLAGS', '--xla_backend_optimization_level=0 '
                      '--xla_llvm_disable_expensive_passes=true')

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
  sys.path.insert(0, REPO_ROOT)
