"""The paper's experiments at small scale, each one command (`python -m dstab reproduce ...`)."""
