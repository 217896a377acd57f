"""Layer 1: assembling the app from settings and running it (serve, workers, the CLI)."""
