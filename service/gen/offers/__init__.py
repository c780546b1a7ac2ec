"""Generated code of the proto package offers (see proto/offers)."""
