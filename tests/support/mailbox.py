"""An aiosmtpd handler that keeps every mail it receives, for the alert-mail tests."""


class Mailbox:
    def __init__(self):
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook name
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"
