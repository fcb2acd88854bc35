"""`casewatch grafana push`: create the folders and upload every board to a Grafana instance."""
from __future__ import annotations

import json
import re

from dashboards.build import GENERATED_DIR, board_folders
from dashboards.local_changes import ANNOTATION_TAG, annotation_time_ms, load_local_changes


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
    push_local_changes(api)
    return pushed


def push_local_changes(api) -> tuple[int, int]:
    """Make Grafana's organisation annotations tagged ``casewatch-local-change`` match
    dashboards/local_changes.yaml: add the missing ones, delete those no longer in the file.
    Returns (added, deleted)."""
    from grafana_client.client import GrafanaClientError

    wanted = {(annotation_time_ms(c.date), c.title, c.la): c for c in load_local_changes()}
    try:
        existing = api.annotations.find_annotations(tags=[ANNOTATION_TAG], limit=1000) or []
    except GrafanaClientError as exc:
        if getattr(exc, "status_code", None) != 404:
            raise
        existing = []
    have = {}
    for item in existing:
        las = [t for t in item.get("tags") or [] if t != ANNOTATION_TAG]
        have[(item.get("time"), item.get("text"), las[0] if las else "")] = item.get("id")
    deleted = 0
    for key, annotation_id in have.items():
        if key not in wanted and annotation_id is not None:
            api.annotations.delete_annotations_by_id(annotations_id=annotation_id)
            deleted += 1
    added = 0
    for key, change in wanted.items():
        if key not in have:
            api.annotations.add_annotation(time_from=key[0], tags=[ANNOTATION_TAG, change.la], text=change.title)
            added += 1
    return added, deleted
