"""Sync destinations: file (CSV/JSONL), Mailchimp, Klaviyo."""

from reverse_etl.destinations.base import DeliveryContext, Destination
from reverse_etl.destinations.file import FileConfig, FileDestination
from reverse_etl.destinations.klaviyo import KlaviyoConfig, KlaviyoDestination
from reverse_etl.destinations.mailchimp import MailchimpConfig, MailchimpDestination

__all__ = [
    "DeliveryContext",
    "Destination",
    "FileConfig",
    "FileDestination",
    "KlaviyoConfig",
    "KlaviyoDestination",
    "MailchimpConfig",
    "MailchimpDestination",
]
