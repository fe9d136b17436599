"""Alerts in the team's chat (企业微信, 钉钉, 飞书 robots): channel settings, messages, and sending them."""

from brandsteps.notify.config import EVENT_KINDS, NotifyChannel, SecretRef
from brandsteps.notify.sender import Delivery, Message, Retry, send_all, send_batch

__all__ = ["EVENT_KINDS", "Delivery", "Message", "NotifyChannel", "Retry", "SecretRef", "send_all", "send_batch"]
