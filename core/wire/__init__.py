"""Layer 8: what goes over the wire: problem+json and its translations, JSON bodies, pages."""
