"""Generated code of the proto package offers.v1 (see proto/offers/v1/offers.proto)."""
