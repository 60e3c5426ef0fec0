"""Delivery: MIME messages, transports (outbox folder, SMTP), resumable campaigns."""

from pressreview.deliver.message import MessageTemplate, build_message

__all__ = ["MessageTemplate", "build_message"]
