"""The on-call notifier: Alertmanager webhooks in, one mail per alert group to the on-call manager out."""
