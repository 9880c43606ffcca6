"""Read-model schema, applied in file-name order by `gatewayz migrate`."""
