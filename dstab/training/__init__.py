"""Training: timestep samplers, optimiser schedules and the trainer."""
