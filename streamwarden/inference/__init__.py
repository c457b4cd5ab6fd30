"""Object detection: a pixel consumer feeds shared memory, a worker process runs the model."""
