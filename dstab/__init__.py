"""dstab: why diffusion models train more stably than GANs, measured."""

__version__ = "0.1.0"
