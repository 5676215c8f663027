"""Importers for published checkpoint formats, registered with dstab.checkpoints on import.

Order matters: `checkpoints.load` asks each importer in turn; the last one
claims any leftover state dict only to explain which layout it is closest to.
"""

from . import dcgan, diffusers_folder, openai, state_dicts

openai.register()
dcgan.register()
diffusers_folder.register()
state_dicts.register()
