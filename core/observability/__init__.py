"""Layer 7: what the server says about itself: metrics and where they are exposed."""
