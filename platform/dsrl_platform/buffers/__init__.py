"""What agents store: replay buffers (vectors, discrete actions, uint8 frames) and rollouts."""
