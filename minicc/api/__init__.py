"""The HTTP API: REST with an OpenAPI spec, served in the switch's event loop."""
