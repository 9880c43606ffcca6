"""Provider clients, one module per wire format."""
