"""`casewatch grafana push`: create the folders and upload every board to a Grafana instance."""
from __future__ import annotations

import json
import re

from dashboards.build import GENERATED_DIR, board_folders


def folder_uid(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def push(url: str, token: str | None, api=None) -> list[str]:
    """Upload the committed generated boards (overwrite=True). Returns the uids pushed.

    ``api`` is a ``grafana_client.GrafanaApi``; made from ``url`` and ``token`` when not given."""
    if api is None:
        from grafana_client import GrafanaApi
        api = GrafanaApi.from_url(url, credential=token)
    from grafana_client.client import GrafanaClientError

    folders = board_folders()
    folder_uids: dict[str, str] = {}
    for title in sorted(set(folders.values())):
        uid = folder_uid(title)
        try:
            api.folder.get_folder(uid)
        except GrafanaClientError as exc:
            if getattr(exc, "status_code", None) != 404:
                raise
            api.folder.create_folder(title, uid=uid)
        folder_uids[title] = uid
    pushed = []
    for board_uid, folder_title in folders.items():
        board = json.loads((GENERATED_DIR / f"{board_uid}.json").read_text())
        board.pop("id", None)
        api.dashboard.update_dashboard({"dashboard": board, "folderUid": folder_uids[folder_title],
                                        "overwrite": True, "message": "casewatch grafana push"})
        pushed.append(board_uid)
    return pushed
