import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Channel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_UNSPECIFIED: _ClassVar[Channel]
    CHANNEL_WEB: _ClassVar[Channel]
    CHANNEL_APP: _ClassVar[Channel]
    CHANNEL_EMAIL: _ClassVar[Channel]
    CHANNEL_PUSH: _ClassVar[Channel]
    CHANNEL_SMS: _ClassVar[Channel]

class OutcomeEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_EVENT_TYPE_UNSPECIFIED: _ClassVar[OutcomeEventType]
    OUTCOME_EVENT_TYPE_SHOWN: _ClassVar[OutcomeEventType]
    OUTCOME_EVENT_TYPE_REDEEMED: _ClassVar[OutcomeEventType]
    OUTCOME_EVENT_TYPE_IGNORED: _ClassVar[OutcomeEventType]
CHANNEL_UNSPECIFIED: Channel
CHANNEL_WEB: Channel
CHANNEL_APP: Channel
CHANNEL_EMAIL: Channel
CHANNEL_PUSH: Channel
CHANNEL_SMS: Channel
OUTCOME_EVENT_TYPE_UNSPECIFIED: OutcomeEventType
OUTCOME_EVENT_TYPE_SHOWN: OutcomeEventType
OUTCOME_EVENT_TYPE_REDEEMED: OutcomeEventType
OUTCOME_EVENT_TYPE_IGNORED: OutcomeEventType

class OfferContext(_message.Message):
    __slots__ = ("cart_item_ids", "viewed_item_id", "channel", "max_cross_sell", "max_up_sell", "max_recommended", "max_bonus_offers", "bonus_ceiling")
    CART_ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    VIEWED_ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    MAX_CROSS_SELL_FIELD_NUMBER: _ClassVar[int]
    MAX_UP_SELL_FIELD_NUMBER: _ClassVar[int]
    MAX_RECOMMENDED_FIELD_NUMBER: _ClassVar[int]
    MAX_BONUS_OFFERS_FIELD_NUMBER: _ClassVar[int]
    BONUS_CEILING_FIELD_NUMBER: _ClassVar[int]
    cart_item_ids: _containers.RepeatedScalarFieldContainer[str]
    viewed_item_id: str
    channel: Channel
    max_cross_sell: int
    max_up_sell: int
    max_recommended: int
    max_bonus_offers: int
    bonus_ceiling: float
    def __init__(self, cart_item_ids: _Optional[_Iterable[str]] = ..., viewed_item_id: _Optional[str] = ..., channel: _Optional[_Union[Channel, str]] = ..., max_cross_sell: _Optional[int] = ..., max_up_sell: _Optional[int] = ..., max_recommended: _Optional[int] = ..., max_bonus_offers: _Optional[int] = ..., bonus_ceiling: _Optional[float] = ...) -> None: ...

class GetOffersRequest(_message.Message):
    __slots__ = ("customer_id", "context")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    context: OfferContext
    def __init__(self, customer_id: _Optional[str] = ..., context: _Optional[_Union[OfferContext, _Mapping]] = ...) -> None: ...

class CrossSellItem(_message.Message):
    __slots__ = ("item_id", "score", "reason")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    score: float
    reason: str
    def __init__(self, item_id: _Optional[str] = ..., score: _Optional[float] = ..., reason: _Optional[str] = ...) -> None: ...

class UpSellItem(_message.Message):
    __slots__ = ("item_id", "anchor_item_id", "score")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    ANCHOR_ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    anchor_item_id: str
    score: float
    def __init__(self, item_id: _Optional[str] = ..., anchor_item_id: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class RecommendedItem(_message.Message):
    __slots__ = ("item_id", "score")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    score: float
    def __init__(self, item_id: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class BonusOffer(_message.Message):
    __slots__ = ("offer_id", "offer_type", "bonus", "threshold", "expires_at", "expected_uplift", "expected_profit", "item_id")
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    OFFER_TYPE_FIELD_NUMBER: _ClassVar[int]
    BONUS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_UPLIFT_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_PROFIT_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    offer_type: str
    bonus: float
    threshold: float
    expires_at: _timestamp_pb2.Timestamp
    expected_uplift: float
    expected_profit: float
    item_id: str
    def __init__(self, offer_id: _Optional[str] = ..., offer_type: _Optional[str] = ..., bonus: _Optional[float] = ..., threshold: _Optional[float] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expected_uplift: _Optional[float] = ..., expected_profit: _Optional[float] = ..., item_id: _Optional[str] = ...) -> None: ...

class Segment(_message.Message):
    __slots__ = ("rfm_code", "rfm_group", "lifecycle_stage")
    RFM_CODE_FIELD_NUMBER: _ClassVar[int]
    RFM_GROUP_FIELD_NUMBER: _ClassVar[int]
    LIFECYCLE_STAGE_FIELD_NUMBER: _ClassVar[int]
    rfm_code: str
    rfm_group: str
    lifecycle_stage: str
    def __init__(self, rfm_code: _Optional[str] = ..., rfm_group: _Optional[str] = ..., lifecycle_stage: _Optional[str] = ...) -> None: ...

class GetOffersResponse(_message.Message):
    __slots__ = ("customer_id", "cross_sell", "up_sell", "recommended", "bonus_offers", "segment", "control_group", "cold_start", "unknown_item_ids", "model_versions")
    class ModelVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CROSS_SELL_FIELD_NUMBER: _ClassVar[int]
    UP_SELL_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDED_FIELD_NUMBER: _ClassVar[int]
    BONUS_OFFERS_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    CONTROL_GROUP_FIELD_NUMBER: _ClassVar[int]
    COLD_START_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    cross_sell: _containers.RepeatedCompositeFieldContainer[CrossSellItem]
    up_sell: _containers.RepeatedCompositeFieldContainer[UpSellItem]
    recommended: _containers.RepeatedCompositeFieldContainer[RecommendedItem]
    bonus_offers: _containers.RepeatedCompositeFieldContainer[BonusOffer]
    segment: Segment
    control_group: bool
    cold_start: bool
    unknown_item_ids: _containers.RepeatedScalarFieldContainer[str]
    model_versions: _containers.ScalarMap[str, str]
    def __init__(self, customer_id: _Optional[str] = ..., cross_sell: _Optional[_Iterable[_Union[CrossSellItem, _Mapping]]] = ..., up_sell: _Optional[_Iterable[_Union[UpSellItem, _Mapping]]] = ..., recommended: _Optional[_Iterable[_Union[RecommendedItem, _Mapping]]] = ..., bonus_offers: _Optional[_Iterable[_Union[BonusOffer, _Mapping]]] = ..., segment: _Optional[_Union[Segment, _Mapping]] = ..., control_group: _Optional[bool] = ..., cold_start: _Optional[bool] = ..., unknown_item_ids: _Optional[_Iterable[str]] = ..., model_versions: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CustomerList(_message.Message):
    __slots__ = ("customer_ids",)
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, customer_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CampaignRequest(_message.Message):
    __slots__ = ("campaign_id", "customers", "segment", "budget", "channel", "control_share")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CONTROL_SHARE_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    customers: CustomerList
    segment: str
    budget: float
    channel: Channel
    control_share: float
    def __init__(self, campaign_id: _Optional[str] = ..., customers: _Optional[_Union[CustomerList, _Mapping]] = ..., segment: _Optional[str] = ..., budget: _Optional[float] = ..., channel: _Optional[_Union[Channel, str]] = ..., control_share: _Optional[float] = ...) -> None: ...

class CampaignOffer(_message.Message):
    __slots__ = ("customer_id", "offer_type", "item_id", "threshold", "bonus", "expected_uplift", "expected_cost", "expected_profit", "control", "offer_id")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    OFFER_TYPE_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    BONUS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_UPLIFT_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_COST_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_PROFIT_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    offer_type: str
    item_id: str
    threshold: float
    bonus: float
    expected_uplift: float
    expected_cost: float
    expected_profit: float
    control: bool
    offer_id: str
    def __init__(self, customer_id: _Optional[str] = ..., offer_type: _Optional[str] = ..., item_id: _Optional[str] = ..., threshold: _Optional[float] = ..., bonus: _Optional[float] = ..., expected_uplift: _Optional[float] = ..., expected_cost: _Optional[float] = ..., expected_profit: _Optional[float] = ..., control: _Optional[bool] = ..., offer_id: _Optional[str] = ...) -> None: ...

class OutcomeEvent(_message.Message):
    __slots__ = ("offer_id", "customer_id", "event", "ts", "revenue", "bonus")
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    TS_FIELD_NUMBER: _ClassVar[int]
    REVENUE_FIELD_NUMBER: _ClassVar[int]
    BONUS_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    customer_id: str
    event: OutcomeEventType
    ts: _timestamp_pb2.Timestamp
    revenue: float
    bonus: float
    def __init__(self, offer_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., event: _Optional[_Union[OutcomeEventType, str]] = ..., ts: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revenue: _Optional[float] = ..., bonus: _Optional[float] = ...) -> None: ...

class OutcomeBatch(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[OutcomeEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[OutcomeEvent, _Mapping]]] = ...) -> None: ...

class OutcomeAck(_message.Message):
    __slots__ = ("accepted",)
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    def __init__(self, accepted: _Optional[int] = ...) -> None: ...

class PingRequest(_message.Message):
    __slots__ = ("payload",)
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    def __init__(self, payload: _Optional[bytes] = ...) -> None: ...

class PingResponse(_message.Message):
    __slots__ = ("payload",)
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    def __init__(self, payload: _Optional[bytes] = ...) -> None: ...
