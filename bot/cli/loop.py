"""threadwise gaps and channels: what the documents did not answer, and how each channel is set up."""

from __future__ import annotations

import argparse
import json

from bot.cli.output import open_knowledge, out
from bot.settings import Settings


def cmd_gaps(settings: Settings, args: argparse.Namespace) -> int:
    from bot.gaps import list_topics, parse_since, topics_text

    since = parse_since(args.since) if args.since else None
    kb = open_knowledge(settings)
    try:
        topics = list_topics(
            settings.database_url, kb.embedder.embed_documents, since=since, channel=args.channel
        )
    finally:
        kb.close()
    if args.json:
        print(json.dumps([t.to_dict() for t in topics], indent=2, ensure_ascii=False))
    else:
        out.print(topics_text(topics), markup=False)
    return 0


def cmd_channels(settings: Settings, args: argparse.Namespace) -> int:
    from bot.channel_config import list_channels

    configs = list_channels(settings.database_url)
    if args.json:
        print(json.dumps([c.to_dict() for c in configs], indent=2))
        return 0
    if not configs:
        out.print("No channel has its own settings (every channel uses the defaults; `/kb config` sets one).")
    for config in configs:
        out.print(f"{config.channel} (team {config.team}, set by {config.updated_by or '?'})", markup=False)
        for name, value in config.summary():
            out.print(f"  {name}: {value}", markup=False)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gaps", help="the questions the documents did not answer, grouped by topic")
    p.add_argument("--since", default="30d", help="how far back: 30d (default), 12h, 2w")
    p.add_argument("--channel", metavar="C", help="only questions asked in channel C")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_gaps)

    p = sub.add_parser("channels", help="the channels with their own settings (/kb config)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_channels)
