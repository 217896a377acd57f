"""Layer 4: plugins, the hooks they implement and the routes they declare."""
