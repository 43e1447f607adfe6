"""Dockerfile and docker-compose.yml, read as files (no Docker engine here): what they set exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from bot.cli import build_parser
from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
# Variables the containers read that are not threadwise settings.
OTHER_VARIABLES = {
    "PATH",
    "PYTHONUNBUFFERED",
    "AGNO_TELEMETRY",
    "PIP_NO_CACHE_DIR",
    "PIP_DISABLE_PIP_VERSION_CHECK",
}


def setting_names() -> set[str]:
    return {field.validation_alias.choices[0] for field in Settings.model_fields.values()}


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def subcommands(parser=None) -> set[tuple[str, ...]]:
    parser = parser or build_parser()
    found = set()
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        for name, sub in action.choices.items():
            found.add((name,))
            found |= {(name, *rest) for rest in subcommands(sub)}
    return found


def test_the_bot_service_sets_only_real_settings():
    bot = compose()["services"]["threadwise"]
    unknown = set(bot["environment"]) - setting_names() - OTHER_VARIABLES
    assert unknown == set()
    for needed in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "DATABASE_URL", "MILVUS_URI"):
        assert needed in bot["environment"]


def test_compose_wires_the_bot_to_its_postgres_and_milvus_services():
    services = compose()["services"]
    env = services["threadwise"]["environment"]
    assert {"postgres", "milvus", "etcd", "minio"} <= set(services)
    assert (
        env["DATABASE_URL"].startswith("postgresql+psycopg://") and "@postgres:5432/" in env["DATABASE_URL"]
    )
    postgres = services["postgres"]["environment"]
    assert f"{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}@" in env["DATABASE_URL"]
    assert env["DATABASE_URL"].endswith("/" + postgres["POSTGRES_DB"])
    assert env["MILVUS_URI"] == "http://milvus:19530"
    for name in ("postgres", "milvus"):
        assert services["threadwise"]["depends_on"][name]["condition"] == "service_healthy"
        assert "healthcheck" in services[name]
    # stop_grace_period must outlast the bot's own SIGTERM deadline (15 s)
    assert int(str(services["threadwise"]["stop_grace_period"]).rstrip("s")) > 15


def test_compose_starts_on_a_fresh_postgres_without_a_manual_step():
    """On PostgreSQL `serve` refuses a schema that is behind: compose must migrate (auto or a command)."""
    bot = compose()["services"]["threadwise"]
    auto = str(bot["environment"].get("THREADWISE_AUTO_MIGRATE", "")).lower() in ("1", "true", "yes")
    command = " ".join(bot.get("command") or [])
    assert auto or "db upgrade" in command


def test_compose_and_dockerfile_commands_exist_in_the_cli():
    known = subcommands()
    instructions = dockerfile_instructions()
    (cmd,) = [json.loads(arg) for kind, arg in instructions if kind == "CMD"]
    (entry,) = [json.loads(arg) for kind, arg in instructions if kind == "ENTRYPOINT"]
    assert entry == ["threadwise"]
    assert (cmd[0],) in known and cmd[0] == "serve"
    build_parser().parse_args(cmd)  # its options parse too
    build_parser().parse_args(compose()["services"]["threadwise"]["command"])


def test_compose_runs_the_front_and_the_answer_workers_apart():
    services = compose()["services"]
    front, worker = services["threadwise"], services["worker"]
    assert str(front["environment"]["THREADWISE_WORKERS"]) == "0"  # the answers run in `worker`
    assert worker["command"] == ["worker"] and "ports" not in worker
    build_parser().parse_args(worker["command"])
    assert set(worker["environment"]) - setting_names() - OTHER_VARIABLES == set()
    for shared in ("DATABASE_URL", "MILVUS_URI", "SLACK_BOT_TOKEN", "THREADWISE_DOCS"):
        assert worker["environment"][shared] == front["environment"][shared]
    assert int(str(worker["stop_grace_period"]).rstrip("s")) > 15


def test_the_dockerfile_runs_as_non_root_with_a_health_check_and_no_secrets():
    instructions = dockerfile_instructions()
    users = [arg for kind, arg in instructions if kind == "USER"]
    assert users and users[-1] not in ("root", "0")
    (health,) = [arg for kind, arg in instructions if kind == "HEALTHCHECK"]
    assert re.search(r"/(healthz|readyz)", health)
    env = " ".join(arg for kind, arg in instructions if kind in ("ENV", "ARG"))
    for secret in (
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "OPENAI_API_KEY",
        "MILVUS_TOKEN",
    ):
        assert secret not in env
    names = set(re.findall(r"\b([A-Z][A-Z0-9_]+)=", env))
    assert names - setting_names() - OTHER_VARIABLES == set()
    assert ("EXPOSE", "3000") in instructions


def test_the_image_ships_the_product_without_the_local_slack_workspace():
    copied = [
        arg.split()[0] for kind, arg in dockerfile_instructions() if kind == "COPY" and "--from" not in arg
    ]
    assert {"bot", "knowledge"} <= set(copied)
    assert "localslack" not in copied and "." not in copied


def test_env_example_copied_as_dot_env_loads_and_names_only_real_settings(tmp_path: Path):
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    names = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, flags=re.M))
    assert names - setting_names() == set()
    assert setting_names() - names == set(), "every setting is listed in .env.example"
    (tmp_path / ".env").write_text(text, encoding="utf-8")
    settings = Settings(_env_file=tmp_path / ".env")  # a newcomer's `cp .env.example .env` must start
    assert settings.workers == 2 and settings.auto_migrate is None
