"""The edge: a proven proxy (nginx, Caddy) carries the traffic, `bastion edge serve` decides."""
