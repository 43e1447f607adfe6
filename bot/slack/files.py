"""Files shared in Slack become knowledge: the bot's side of ``knowledge.slack_files``.

``FileIndexer`` runs one job at a time on the bot's loop (so a share, an edit and a delete of the same
file apply in the order Slack sent them), well away from the acknowledgements: listeners only queue a
job. Each job looks the file up (files.info), works out where it is shared and whether each place is
private (``SlackWeb.is_private``: unknown is private), downloads it with the bot token and hands the
bytes to ``knowledge.slack_files`` in a thread.

``reconcile`` lists the files of every conversation the bot is in (users.conversations, then
files.list per conversation): files shared while the bot was down are indexed, files gone from Slack
are removed (only after a complete listing), and access follows channels made private.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

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
    def __init__(
        self,
        web: SlackWeb,
        knowledge: KnowledgeBase,
        settings: Settings,
        audiences: Audiences | None = None,
    ):
        self.web = web
        self.audiences = audiences
        self.knowledge = knowledge
        self.settings = settings
        self._queue: asyncio.Queue[tuple[str, Callable[[], Awaitable[Any]]]] = asyncio.Queue()
        self._queued: set[str] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.last: FilesReport | None = None  # the last reconcile's outcome

    # -- what listeners call (never blocks) ------------------------------------------------------

    def shared(self, file_id: str) -> None:
        """A file was shared or unshared: look it up again and index what it is now."""
        self._submit(f"file:{file_id}", lambda: self._refresh(file_id))

    def changed(self, file_id: str) -> None:
        """A file's content changed (file_change): download it again whatever its metadata says."""
        self._submit(f"changed:{file_id}", lambda: self._refresh(file_id, force=True))

    def deleted(self, file_id: str) -> None:
        self._submit(f"deleted:{file_id}", lambda: self._remove(file_id))

    def left(self, channel: str) -> None:
        """The bot left a conversation: what only it could see goes now; the rest is listed again."""
        self._submit(f"left:{channel}", lambda: self._left(channel))

    def audience_changed(self, channel: str) -> None:
        """Shared with another organisation, or unshared: the access of its files is worked out again."""
        self._submit(f"audience:{channel}", lambda: self._refresh_channel(channel))

    def privacy_changed(self, channel: str, private: bool) -> None:
        self.web.note_private(channel, private)
        if self.audiences is not None:
            self.audiences.forget_channel(channel)
        self._submit(f"privacy:{channel}", lambda: self._refresh_channel(channel))

    def reconcile_soon(self) -> None:
        self._submit("reconcile", self._reconcile)

    async def reconcile(self) -> FilesReport:
        """Run a reconcile now, in turn with the other jobs; its report."""
        done: asyncio.Future[FilesReport] = asyncio.get_running_loop().create_future()

        async def job() -> None:
            try:
                done.set_result(await self._reconcile())
            except Exception as exc:
                done.set_exception(exc)

        self._queue.put_nowait(("reconcile-now", job))
        self._idle.clear()
        return await done

    async def wait_idle(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._idle.wait(), timeout)

    # -- the job loop ----------------------------------------------------------------------------

    async def run(self, *, periodic_reconcile: bool = True) -> None:
        """Until cancelled; with THREADWISE_SYNC_MINUTES > 0 and ``periodic_reconcile``, also a
        reconcile at start and periodically."""
        periodic = None
        if periodic_reconcile and self.settings.sync_minutes > 0:
            periodic = asyncio.get_running_loop().create_task(self._periodic())
        try:
            while True:
                key, job = await self._queue.get()
                self._queued.discard(key)
                try:
                    await job()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("Slack file job %s failed", key)
                finally:
                    if self._queue.empty():
                        self._idle.set()
        finally:
            if periodic is not None:
                periodic.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await periodic

    async def _periodic(self) -> None:
        while True:
            self.reconcile_soon()
            await asyncio.sleep(self.settings.sync_minutes * 60)

    def _submit(self, key: str, job: Callable[[], Awaitable[Any]]) -> None:
        if key in self._queued:  # the same look-up is already waiting (file_shared + its message)
            return
        self._queued.add(key)
        self._idle.clear()
        self._queue.put_nowait((key, job))

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
            self.reconcile_soon()
            return
        found = [(await self.describe(info), info) for info in listed]
        await self._index(found, complete=False)

    async def _reconcile(self) -> FilesReport:
        complete = True
        try:
            members = await self.web.member_conversations()
        except SlackCallError as exc:
            report = FilesReport(errors=[f"cannot list the bot's conversations: {exc.code}"])
            self.last = report
            return report
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
        self.last = report
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
            if not privacy[channel] and self.audiences is not None:
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
