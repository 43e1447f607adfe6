"""Files shared in Slack become knowledge: the bot's side of ``knowledge.slack_files``.

The front's listeners only record a job (``bot.jobs``); ``FileIndexer`` runs them in the answer
workers, one at a time across all of them (so a share, an edit and a delete of the same file apply in
the order Slack sent them). Each job looks the file up (files.info), works out where it is shared and
whether each place is private (``SlackWeb.is_private``: unknown is private) or shared with another
organisation, downloads it with the bot token and hands the bytes to ``knowledge.slack_files`` in a
thread.

A reconcile lists the files of every conversation the bot is in (users.conversations, then
files.list per conversation): files shared while the bot was down are indexed, files gone from Slack
are removed (only after a complete listing), and access follows channels made private.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from bot.jobs import Job
from bot.settings import Settings
from bot.slack.audience import Audiences
from bot.slack.web import FileTooLarge, SlackCallError, SlackWeb, make_client
from knowledge import slack_files
from knowledge.base import KnowledgeBase
from knowledge.errors import UnreadableDocument
from knowledge.slack_files import FilesReport, SlackFile
from knowledge.types import AccessScope

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT = 180.0


class FileIndexer:
    """Runs the Slack-file jobs (``bot.jobs``) in an answer worker, one at a time (their lane)."""

    def __init__(self, web: SlackWeb, knowledge: KnowledgeBase, settings: Settings):
        self.web = web
        self.knowledge = knowledge
        self.settings = settings
        self.audiences = Audiences(settings.external, knowledge=knowledge)
        self._team: str | None = None

    async def run(self, job: Job) -> FilesReport | None:
        """Run one job; a reconcile's report."""
        # What Slack says now, not what this process cached: the events that change privacy and
        # audiences reached the front, and the jobs before this one ran in whichever worker.
        self.web = SlackWeb(self.web.client)
        if self._team is None:
            self._team = (await self.web.identity()).team_id
        self.audiences = Audiences(self.settings.external, knowledge=self.knowledge, team=self._team)
        subject = job.subject
        match job.kind:
            case "file":  # shared or unshared: looked up again, indexed as it is now
                await self._refresh(subject)
            case "changed":  # file_change: downloaded again whatever its metadata says
                await self._refresh(subject, force=True)
            case "deleted":
                await self._remove(subject)
            case "left":
                await self._left(subject)
            case "audience":  # shared with another organisation, or unshared
                await self._refresh_channel(subject)
            case "privacy":
                self.web.note_private(subject, bool(job.args.get("private", True)))
                await self._refresh_channel(subject)
            case "reconcile":
                return await self._reconcile()
            case _:
                raise ValueError(f"not a Slack-file job: {job.kind}")
        return None

    # -- jobs ------------------------------------------------------------------------------------

    async def _refresh(self, file_id: str, *, force: bool = False) -> None:
        info = await self.web.file_info(file_id)
        if info is None:
            await self._remove(file_id)
            return
        file = await self.describe(info)
        await self._index([(file, info)], complete=False, force=force)

    async def _remove(self, file_id: str) -> None:
        removed = await asyncio.to_thread(slack_files.remove_file, self.knowledge, file_id)
        if removed:
            log.info("Slack file %s left the index", file_id)

    async def _left(self, channel: str) -> None:
        self.web.note_private(channel, True)
        await asyncio.to_thread(slack_files.remove_access, self.knowledge, f"channel:{channel}")
        await self._reconcile()  # public files shared only there, files also shared elsewhere

    async def _refresh_channel(self, channel: str) -> None:
        try:
            listed = await self.web.files_in(channel)
        except SlackCallError:
            await self._reconcile()  # listed in full instead
            return
        found = [(await self.describe(info), info) for info in listed]
        await self._index(found, complete=False)

    async def _reconcile(self) -> FilesReport:
        complete = True
        try:
            members = await self.web.member_conversations()
        except SlackCallError as exc:
            return FilesReport(errors=[f"cannot list the bot's conversations: {exc.code}"])
        infos: dict[str, dict[str, Any]] = {}
        for channel in members:
            try:
                for info in await self.web.files_in(channel):
                    infos.setdefault(info["id"], info)
            except SlackCallError:
                complete = False
        found = [(await self.describe(info), info) for info in infos.values()]
        report = await self._index(found, complete=complete)
        if not complete:
            report.errors.append("the file listing was incomplete: nothing was removed")
        log.info(
            "Slack files reconciled: added=%d updated=%d removed=%d unchanged=%d skipped=%d errors=%d",
            report.added,
            report.updated,
            report.removed,
            report.unchanged,
            len(report.skipped),
            len(report.errors),
        )
        return report

    async def _index(
        self, found: list[tuple[SlackFile, dict[str, Any]]], *, complete: bool, force: bool = False
    ) -> FilesReport:
        loop = asyncio.get_running_loop()
        urls = {
            file.file_id: info.get("url_private_download") or info.get("url_private") for file, info in found
        }

        def fetch(file: SlackFile) -> bytes:  # called in the worker thread; downloads on this loop
            url = urls.get(file.file_id)
            if not url:
                raise UnreadableDocument("no download URL (an external or deleted file?)")
            future = asyncio.run_coroutine_threadsafe(self._download(url), loop)
            return future.result(DOWNLOAD_TIMEOUT)

        return await asyncio.to_thread(
            slack_files.reconcile_files,
            self.knowledge,
            [file for file, _ in found],
            complete=complete,
            fetch=fetch,
            force=force,
        )

    async def _download(self, url: str) -> bytes:
        limit = int(self.settings.max_file_mb * 1024 * 1024)
        try:
            return await self.web.download(url, max_bytes=limit)
        except FileTooLarge as exc:
            raise UnreadableDocument(
                f"too large: {exc.size / 1048576:.1f} MB > {self.settings.max_file_mb:g} MB limit"
            ) from None

    # -- what a file object says ---------------------------------------------------------------

    async def describe(self, info: dict[str, Any]) -> SlackFile:
        """The file as knowledge sees it: each conversation it is shared in, and whether that is private."""
        shares = info.get("shares") or {}
        said_private = set(shares.get("private") or {})
        places = list(shares.get("public") or {}) + list(said_private)
        for key in ("channels", "groups", "ims"):
            places += info.get(key) or []
        privacy: dict[str, bool] = {}
        for channel in dict.fromkeys(places):
            # Slack's own "private" is final; anything else is asked (cached, unknown = private). A
            # channel shared with another organisation counts as private: its files are for it alone.
            privacy[channel] = channel in said_private or await self.web.is_private(channel)
            if not privacy[channel]:
                facts = await self.audiences.channel(self.web, None, channel)
                privacy[channel] = facts.external
        updated = info.get("updated") or info.get("edit_timestamp") or info.get("timestamp") or 0
        return SlackFile(
            file_id=info["id"],
            name=info.get("name") or info.get("title") or info["id"],
            shares=privacy,
            title=info.get("title") or "",
            author=info.get("user") or "",
            permalink=info.get("permalink") or "",
            updated=int(float(updated or info.get("created") or 0)),
            size=int(info.get("size") or 0),
        )


CHANNEL_ID = re.compile(r"^[CDG][A-Z0-9_]{1,40}$")


async def channel_scope(settings: Settings, channel: str) -> tuple[AccessScope, str]:
    """What conversation ``channel`` may see, for ``threadwise search --channel``, and how it was decided.

    Privacy comes from Slack (conversations.info with SLACK_BOT_TOKEN). Without a token, or when Slack
    will not say, the conversation counts as private: its scope is then the workspace plus files
    shared in it alone, which is never more than its own members can already open.
    """
    if not CHANNEL_ID.fullmatch(channel):
        raise ValueError(f"invalid conversation id {channel!r}: expected e.g. C0123ABCD, G…, D…")
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
    if not token:
        how = "privacy unknown (no SLACK_BOT_TOKEN): treated as private"
        return AccessScope.for_channel(channel, True), how
    web = SlackWeb(make_client(token, settings.slack_api_url))
    private = await web.is_private(channel)
    how = "private (or unknown to Slack): workspace and its own files" if private else "public: workspace"
    return AccessScope.for_channel(channel, private), how


__all__ = ["FileIndexer", "channel_scope"]
