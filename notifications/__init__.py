"""D14 notifications: emails and outbound webhooks derived from D8 events, kept in an outbox
written in the event's own transaction and delivered at least once by a dispatcher."""
