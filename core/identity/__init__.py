"""Layer 5: who the caller is: bearer tokens, roles and the server's secrets."""
