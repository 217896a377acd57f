"""Layer 2: the request path from socket to handler, and the operations routes."""
