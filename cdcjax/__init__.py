"""cdcjax: deep image clustering (CDC and peers) in JAX/Flax."""

__version__ = '0.1.0'
