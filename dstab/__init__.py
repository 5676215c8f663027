"""dstab: why diffusion models train more stably than GANs, measured.

The public API (`probe`, `surface`, `interpolate`, `hessian`, `consistency`,
`register_architecture`) is imported on first use, so `import dstab` stays light
(no PyTorch) for the dashboard's Home page and for `dstab --help`.
"""

__version__ = "0.1.0"

_API = {
    "probe": "api",
    "surface": "api",
    "interpolate": "api",
    "hessian": "api",
    "consistency": "api",
    "register_architecture": "models",
}
__all__ = ["__version__", *_API]


def __getattr__(name):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(f"dstab.{_API[name]}"), name)
    raise AttributeError(f"module 'dstab' has no attribute {name!r}")
