"""The gRPC service: transport for the offer engine (proto contract in proto/offers/v1)."""
