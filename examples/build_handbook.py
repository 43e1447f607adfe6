"""Build the PDF and DOCX documents of the sample handbook in examples/handbook/.

The handbook is a made-up company's internal handbook (Quillfeather Labs, maker of Ledgerloom) that a
newcomer's first ``threadwise sync`` indexes and ``threadwise eval`` measures retrieval on. Most of it is
plain Markdown, HTML, text and CSV kept as files; the PDF and DOCX documents are binary, so their text
lives here and this script renders it. Edit the text below, then regenerate:

    .venv/bin/python examples/build_handbook.py            # writes into examples/handbook/
    .venv/bin/python examples/build_handbook.py --out DIR  # writes somewhere else

Output is deterministic (fixed dates and zip timestamps), so regenerating without edits leaves git clean.
Needs fpdf2 and python-docx (both in the ``dev`` extra).

The text uses a small Markdown-like markup, one block per line:

    # Title            the document title (PDF outline level 0, DOCX "Heading 1")
    ## Heading         a section (level 1, "Heading 2");  ### Heading: a subsection
    - item             a bullet;  "1. item": a numbered step
    | a | b |          a table row; the first row of a table is its header
    plain lines        a paragraph; consecutive lines join

A line indented by two spaces continues the bullet, step or table row above it.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

HANDBOOK = Path(__file__).resolve().parent / "handbook"
COMPANY = "Quillfeather Labs"
# One fixed timestamp for every generated file, so rebuilding is byte-for-byte reproducible.
BUILT_AT = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Block:
    kind: str  # "title", "heading", "paragraph", "bullet", "step", "table"
    text: str = ""
    level: int = 0  # heading depth: 1 for "##", 2 for "###"
    number: str = ""  # a step's number, as written
    rows: tuple[tuple[str, ...], ...] = ()


_HEADING = re.compile(r"^(#{1,3}) (.+)$")
_STEP = re.compile(r"^(\d+)\. (.+)$")
_RULE = re.compile(r"^:?-{3,}:?$")


def parse(text: str, name: str = "<text>") -> list[Block]:
    """Turn the markup into blocks; a malformed document raises ValueError naming the line."""
    blocks: list[Block] = []
    table: list[tuple[str, ...]] = []
    paragraph: list[str] = []
    item: tuple[str, str, list[str]] | None = None  # (kind, number, lines) of an open bullet/step/row

    def close_item() -> None:
        nonlocal item
        if item is None:
            return
        kind, number, lines = item
        joined = " ".join(lines)
        item = None
        if kind == "row":
            if not joined.endswith("|"):
                raise ValueError(f"{name}: table row does not end with '|': {joined[:60]!r}")
            cells = tuple(cell.strip() for cell in joined.strip("|").split("|"))
            if all(_RULE.match(cell) for cell in cells):
                return  # a Markdown header rule such as "| --- | --- |"
            if table and len(cells) != len(table[0]):
                raise ValueError(f"{name}: table row has {len(cells)} cells, header has {len(table[0])}")
            table.append(cells)
        else:
            blocks.append(Block(kind, joined, number=number))

    def close_all() -> None:
        close_item()
        if paragraph:
            blocks.append(Block("paragraph", " ".join(paragraph)))
            paragraph.clear()
        if table:
            blocks.append(Block("table", rows=tuple(table)))
            table.clear()

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not line:
            close_all()
        elif raw.startswith("  ") and item is not None:
            item[2].append(line.strip())
        elif line.startswith("|"):
            close_item()
            if paragraph:
                close_all()
            item = ("row", "", [line])
        elif paragraph and not (_HEADING.match(line) or line.startswith("- ") or _STEP.match(line)):
            paragraph.append(line.strip())
        else:
            close_all()
            if heading := _HEADING.match(line):
                depth = len(heading.group(1))
                if depth == 1 and any(b.kind == "title" for b in blocks):
                    raise ValueError(f"{name}:{lineno}: a document has one '# ' title")
                kind = "title" if depth == 1 else "heading"
                blocks.append(Block(kind, heading.group(2), level=depth - 1))
            elif line.startswith("- "):
                item = ("bullet", "", [line[2:]])
            elif step := _STEP.match(line):
                item = ("step", step.group(1), [step.group(2)])
            elif raw.startswith(" "):
                raise ValueError(f"{name}:{lineno}: indented line continues nothing: {line.strip()[:60]!r}")
            else:
                paragraph.append(line)
    close_all()
    if not blocks or blocks[0].kind != "title":
        raise ValueError(f"{name}: a document must start with a '# ' title")
    return blocks


# --- PDF -----------------------------------------------------------------------------------------


def render_pdf(text: str, name: str = "<text>") -> bytes:
    from fpdf import FPDF

    blocks = parse(text, name)
    title = blocks[0].text

    class HandbookPDF(FPDF):
        def footer(self) -> None:
            self.set_y(-14)
            self.set_font("Helvetica", size=8)
            self.set_text_color(110)
            self.cell(0, 6, f"{COMPANY} · {title} · page {self.page_no()}", align="C")
            self.set_text_color(0)

    pdf = HandbookPDF(format="A4")
    pdf.core_fonts_encoding = "cp1252"  # the core fonts' Windows encoding has €, curly quotes and dashes
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(True, margin=20)
    pdf.set_title(title)
    pdf.set_author(COMPANY)
    pdf.set_creator("examples/build_handbook.py")
    pdf.set_creation_date(BUILT_AT)
    pdf.add_page()

    for block in blocks:
        if block.kind == "title":
            pdf.start_section(block.text, level=0)
            pdf.set_font("Helvetica", "B", 18)
            pdf.multi_cell(0, 9, block.text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
        elif block.kind == "heading":
            pdf.ln(3)
            pdf.start_section(block.text, level=block.level)
            pdf.set_font("Helvetica", "B", 14 if block.level == 1 else 12)
            pdf.multi_cell(0, 7, block.text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
        elif block.kind == "paragraph":
            pdf.set_font("Helvetica", size=10.5)
            pdf.multi_cell(0, 5.5, block.text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
        elif block.kind in ("bullet", "step"):
            marker = "•" if block.kind == "bullet" else f"{block.number}."
            pdf.set_font("Helvetica", size=10.5)
            pdf.set_x(pdf.l_margin + 3)
            pdf.cell(6, 5.5, marker)
            pdf.multi_cell(pdf.epw - 9, 5.5, block.text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
        elif block.kind == "table":
            pdf.set_font("Helvetica", size=9)
            with pdf.table(
                col_widths=_column_widths(block.rows, pdf.epw),
                text_align="LEFT",
                line_height=4.8,
                padding=1.5,
            ) as table:
                for cells in block.rows:
                    row = table.row()
                    for cell in cells:
                        row.cell(cell)
            pdf.ln(3)
    return bytes(pdf.output())


def _column_widths(rows: Sequence[Sequence[str]], page_width: float) -> tuple[float, ...]:
    """Widths in mm: each column fits its longest word, and the rest of the page goes by average text
    length, so short columns do not waste the page and no word is broken mid-way."""
    columns = list(zip(*rows, strict=True))
    floors = [max(len(word) for cell in col for word in cell.split() or [""]) * 1.9 + 4 for col in columns]
    weights = [sum(len(cell) for cell in col) / len(col) + 1 for col in columns]
    spare = max(page_width - sum(floors), 0)
    return tuple(floor + spare * weight / sum(weights) for floor, weight in zip(floors, weights, strict=True))


# --- DOCX ----------------------------------------------------------------------------------------


def render_docx(text: str, name: str = "<text>") -> bytes:
    from docx import Document
    from docx.shared import Cm

    blocks = parse(text, name)
    doc = Document()
    props = doc.core_properties
    props.title = blocks[0].text
    props.author = COMPANY
    props.last_modified_by = COMPANY
    props.comments = "Generated by examples/build_handbook.py"
    props.created = props.modified = BUILT_AT.replace(tzinfo=None)
    props.revision = 1

    for block in blocks:
        if block.kind == "title":
            doc.add_heading(block.text, level=1)
        elif block.kind == "heading":
            doc.add_heading(block.text, level=block.level + 1)
        elif block.kind == "paragraph":
            doc.add_paragraph(block.text)
        elif block.kind == "bullet":
            doc.add_paragraph(block.text, style="List Bullet")
        elif block.kind == "step":
            # Literal numbers: Word's "List Number" style would continue counting across separate lists.
            paragraph = doc.add_paragraph(f"{block.number}. {block.text}")
            paragraph.paragraph_format.left_indent = Cm(0.63)
        elif block.kind == "table":
            table = doc.add_table(rows=len(block.rows), cols=len(block.rows[0]))
            table.style = "Table Grid"
            for r, cells in enumerate(block.rows):
                for c, cell_text in enumerate(cells):
                    cell = table.cell(r, c)
                    cell.text = cell_text
                    if r == 0:
                        for run in cell.paragraphs[0].runs:
                            run.bold = True
            doc.add_paragraph()
    buffer = io.BytesIO()
    doc.save(buffer)
    return _fixed_zip_times(buffer.getvalue())


def _fixed_zip_times(data: bytes) -> bytes:
    """python-docx stamps zip members with the current time; pin them so rebuilds are identical."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=BUILT_AT.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            dst.writestr(fixed, src.read(info.filename))
    return out.getvalue()


# --- building ------------------------------------------------------------------------------------


def render(path: str, text: str) -> bytes:
    if path.endswith(".pdf"):
        return render_pdf(text, path)
    if path.endswith(".docx"):
        return render_docx(text, path)
    raise ValueError(f"{path}: only .pdf and .docx documents are generated")


def build(out_dir: Path = HANDBOOK) -> list[Path]:
    """Render every document into ``out_dir`` (relative paths kept) and return the files written."""
    written = []
    for rel, text in DOCUMENTS.items():
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(render(rel, text))
        written.append(target)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=HANDBOOK, help="folder to write into (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    try:
        written = build(args.out)
    except (ImportError, ValueError) as exc:
        print(f"build_handbook: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0


# --- the documents -------------------------------------------------------------------------------
# Paths are relative to examples/handbook/. Facts here must agree with the Markdown, HTML, text and CSV
# documents next to them, and with questions.jsonl, which quotes some of them.

DOCUMENTS: dict[str, str] = {
    "engineering/backup-and-restore.docx": """\
# Backup and restore standard

Owner: Platform team (Tomasz Brereton, Head of Platform). Last reviewed: February 2025. Applies to all
production data stores in both regions.

Backups exist for one reason: to restore. This standard lists what we back up, how often, for how long
and where, how we prove that restores work, and how to ask for one. It also explains what we
deliberately do not back up.

## What we back up

| Data store | Method | Frequency | Retention | Copies |
| --- | --- | --- | --- | --- |
| pg-core (PostgreSQL, London) | pgBackRest full backup plus continuous WAL archiving | Full backup
  nightly at 01:30 UTC; WAL continuously | 35 days | S3 bucket qf-pg-backups-euw2, copied to eu-west-1
  (Ireland) |
| pg-cac (PostgreSQL, Canada) | pgBackRest full backup plus continuous WAL archiving | Full backup
  nightly at 06:30 UTC; WAL continuously | 35 days | S3 in ca-central-1, copied to ca-west-1 (Calgary) |
| Invoice files in S3 | Bucket versioning and cross-region replication | On every write | Previous
  versions kept 35 days | Replica bucket in the paired region |
| OpenSearch indexes | Snapshots | Daily | 7 days | Same region |
| Kafka topics | Not backed up | Not applicable | Topic retention only | Not applicable |
| Redis | Not backed up | Not applicable | Not applicable | Not applicable |

All backups, including the cross-region copies, are kept for 35 days and then expire automatically.
There are no long-term archives of customer data. Cross-region copies stay in the same jurisdiction as
the primary: EU data stays in the EU, Canadian data in Canada.

## Why some stores are not backed up

- Kafka is a transport, not a system of record. Every event that matters is also in pg-core, and
  consumers can be replayed within the topic retention.
- OpenSearch indexes can always be rebuilt from pg-core. Daily snapshots exist only to make a rebuild
  faster.
- Redis holds caches and rate-limit counters. Losing it costs a few seconds of slower requests.

## Point-in-time recovery

Because WAL is archived continuously, pg-core and pg-cac can be restored to any moment within the last
35 days, to the second. A full restore of pg-core, about 2.1 TB, takes roughly three hours to a new
cluster; most of that is copying the base backup.

## Encryption and access

Backups are encrypted at rest with a KMS key per region that is separate from the production database
key. Only three people can read the backup buckets directly: the Head of Platform and two named Platform
engineers. Restores are run by automation under a dedicated role, and every access is logged to the
security audit channel.

## Proving restores work

### Monthly restore test

On the second Thursday of every month, automation restores the latest pg-core backup to a scratch
instance, replays WAL to a random point in the previous 24 hours, and runs verification queries: row
counts per table against production, checksums of a sample of invoices, and a login as the acme-demo
test tenant. The results are posted to the platform channel and kept in the restore log.

A failed restore test is treated as a SEV3 incident and must be fixed before the next nightly backup
cycle is trusted.

### Annual disaster recovery exercise

Once a year the Platform team restores the whole production stack into an empty AWS account from backups
alone, to check that nothing depends on a system we forgot. The last exercise, in October 2024, took 9
hours and found two missing IAM policies, since fixed.

## Requesting a restore

Most restore requests come from Support: a customer deleted something by mistake and wants it back.

1. Support opens a ticket in Tally and posts the link in the platform-help channel with the tenant ID,
  what was deleted and the time window.
2. The tenant's owner must confirm the request in writing, because a restore can overwrite changes made
  since.
3. The Head of Platform approves. The on-call Platform engineer restores into a scratch database, never
  over production, and copies back only the affected tenant's records with the tenant restore script.
4. Support confirms with the customer, and the scratch database is destroyed within 48 hours.

Single-tenant restores are best effort and usually complete within one working day. Data deleted more
than 35 days ago cannot be restored.

## Responsibilities

- Platform team: backup jobs, monitoring of backup success, the monthly test and the annual exercise.
- Owning teams: telling the Platform team when a new data store is added, before it reaches production.
- Security Engineering: reviewing access to backup buckets in the quarterly access review.
""",
    "engineering/observability.pdf": """\
# Observability standard: metrics, logs, traces and alerts

Owner: Platform team (Tomasz Brereton, Head of Platform). Applies to every service in the service
catalogue. Last reviewed: March 2025.

We cannot run what we cannot see. This standard describes the observability stack every Ledgerloom
service plugs into, what each service must emit, how long we keep it, and the rules for alerts that wake
people up. New services are not allowed into production until they meet it; existing services that fall
short have a ticket in their team's backlog.

## The stack: Lantern

Lantern is the name we use for our observability platform as a whole. Behind it are open-source
components that the Platform team runs in each production region:

- Prometheus for metrics, with long-term storage in Thanos;
- Loki for logs;
- Tempo for distributed traces, fed by OpenTelemetry;
- Grafana for dashboards and alert rules, reached at lantern.quillfeather.internal;
- Beacon for routing alerts to people (paging, Slack notifications and tickets).

Lantern runs separately from the production workloads it watches, so that an outage of a product service
does not take the dashboards with it. Lantern itself is a tier-3 service: if it is down out of hours,
nobody is paged for it, but the Platform primary checks it first thing.

## What every service must emit

### Metrics

Every service exposes the four golden signals on its /metrics endpoint, labelled by endpoint or job
type:

- traffic: requests or messages handled per second;
- errors: failed requests, split into client errors and server errors;
- latency: a histogram, from which dashboards show p50, p95 and p99;
- saturation: queue depth or consumer lag, connection pool usage, CPU and memory against limits.

Labels must have bounded cardinality. Never put a tenant ID, user ID or invoice ID in a metric label; a
label with unbounded values can take down Prometheus for everyone. Per-tenant views are built from logs
and traces instead.

### Logs

- Logs are structured JSON, one event per line, with the fields timestamp, level, service, trace_id and
  tenant_id.
- Never log personal data or document contents: no names, email addresses, bank details, invoice lines
  or SAML assertions. Log identifiers instead.
- Use the levels consistently: ERROR means someone should look at this; WARN means something unexpected
  was handled; INFO records business events; DEBUG is off in production.

### Traces

All HTTP and gRPC entry points start or continue an OpenTelemetry trace, and all outbound calls and
Kafka messages propagate the trace context. Sampling keeps 10% of normal traces and 100% of traces that
contain an error or take longer than two seconds.

## Retention

| Signal | Searchable in Lantern | Archive |
| --- | --- | --- |
| Metrics | 13 months | none |
| Logs | 30 days | 1 year in S3 Glacier, restored on request |
| Traces | 7 days | none |

Restoring archived logs takes up to 12 hours and needs the approval of the Head of Platform, because
archived logs can contain tenant identifiers.

## Dashboards

Each service has a standard dashboard, generated from a template, with its golden signals, its SLO and
error budget, its dependencies and its recent deploys from Shipyard. Teams add their own panels below
the standard ones. Shared dashboards worth knowing:

- pg-core overview: replication lag, connections, transaction rate, failover history;
- Ingestion freshness: the share of invoices extracted within the target time, per tenant and source;
- Matchbook outcomes: auto-match rate and exception reasons;
- turnstile sign-in: sign-in success rate by identity provider, with failures by error code.

## SLOs and error budgets

Each tier-0, tier-1 and tier-2 service has an availability SLO, recorded in the service catalogue. The
error budget is what the SLO allows to fail over 30 days: a 99.9% SLO allows about 43 minutes of full
unavailability, or the equivalent in partial errors.

When a service has spent its whole error budget for the 30-day window, its team stops feature deploys to
that service, except fixes that improve reliability, until the budget recovers. The engineering manager
can agree an exception with the VP Engineering.

## Alerting rules

### Every paging alert must be actionable

An alert that pages a person must meet all of these:

- it describes a symptom customers feel, or a cause that will soon become one;
- it links a runbook that says what to check first;
- it has an owning team and an urgency (page or ticket);
- it has fired for a real problem at least once, or is a known failure mode such as a database failover.

Alerts that do not meet these rules become tickets or dashboard panels, not pages.

### Burn-rate alerts

SLO alerts are based on how fast the error budget is burning, not on raw thresholds:

- page when the burn rate is above 14.4 over the last hour (about 2% of the 30-day budget spent in one
  hour) and still above it over the last five minutes;
- ticket when the burn rate is above 6 over the last six hours.

### Alert hygiene

On the first Wednesday of each month every team holds a 30-minute alert hygiene session. Any alert that
fired more than five times in the month without anyone taking action is deleted, re-tuned or downgraded.
The on-call log is the input: that is why we ask on-call engineers to note false alarms.

## Adding observability to a new service

1. Start from the service template in the monorepo; it includes the metrics endpoint, the JSON logger
  and tracing.
2. Generate the standard dashboard with loomctl lantern dashboard create.
3. Define the SLO and add the service to the service catalogue.
4. Write the runbook before the first paging alert.
5. Ask the Platform team for a review in the platform-help channel; the review takes about an hour.
""",
    "security/data-classification.pdf": """\
# Data classification and handling policy

Owner: Security Engineering (Priya Ramaswamy-Holt, Head of Security) with the Data Protection Officer
(Orla McGivney). Applies to all staff, contractors and systems. Last reviewed: January 2025.

Not all information needs the same protection. This policy defines four classification levels, gives
examples of each, and sets out how data at each level may be stored, shared and disposed of. When you
are unsure how to classify something, choose the higher level and ask in the security channel.

## The four levels

### Public

Information that is meant for anyone, or that would cause no harm if anyone saw it. Examples: the
marketing website, published product documentation, the public API reference, job adverts, press
releases and the status page. Only the owning team (usually Marketing or Product) may publish
information, which is what makes it Public; a document does not become Public because someone posted it
outside.

### Internal

Information for everyone at Quillfeather that would cause limited harm if it leaked. Examples: this
handbook, internal announcements, the product roadmap, most Slack conversations, team meeting notes,
organisation charts. Internal is the default for anything you create at work.

### Confidential

Information whose disclosure would harm Quillfeather or our customers, and which only the people who
need it should see. Examples:

- customer data in Ledgerloom: invoices, purchase orders, supplier lists, approval histories;
- customer names, contracts, pricing and account plans;
- source code, architecture diagrams and infrastructure configuration;
- financial results before publication, board papers, security assessment reports and penetration test
  results;
- personal data of employees and candidates that is not in the Restricted list.

### Restricted

Information whose disclosure would cause severe harm, including legal, regulatory or financial damage,
and which only named people may access. Examples:

- bank account details of suppliers, customers or employees, and payment files;
- passwords, private keys, API tokens and any other authentication secrets;
- full exports of production databases;
- special category personal data such as health information, and payroll data;
- the details of an open security incident.

## Handling rules

| Activity | Internal | Confidential | Restricted |
| --- | --- | --- | --- |
| Where it may be stored | Company systems | Approved company systems with access limited to those who
  need it | Only the systems approved for that data (production, the HR and payroll systems, 1Password)
  |
| On laptops | Allowed | Allowed on encrypted company laptops; avoid local copies of customer data |
  Never |
| Sharing inside Quillfeather | Anyone | People with a need to know | Named people approved in Gatehouse
  |
| Sharing outside | With a reason | Only under an NDA or contract, approved by the data owner | Only
  with written approval of the Head of Security and the DPO |
| Email | Allowed | Allowed to approved recipients; never to personal addresses | Never as plain
  attachments; use the approved encrypted transfer service |
| AI tools | Approved tools | Approved tools cleared for Confidential data | Never |
| Printing | Allowed | Avoid; collect immediately; shred | Not allowed |

## Labelling

Documents classified Confidential or Restricted carry the label in their header or title, for example
"Confidential: customer contract". Google Drive enforces labels: a file labelled Restricted cannot be
shared outside named users, and a file labelled Confidential cannot be shared outside the company domain
without an approved exception. Systems are classified as a whole by their owners in Gatehouse;
everything inside a system inherits the system's level unless labelled higher.

## Data owners

Every category of data has an owner, usually the head of the department that creates it. The owner
decides who gets access, approves exceptions and keeps the classification up to date. Customer data in
Ledgerloom is owned on Quillfeather's side by the CTO, on behalf of our customers, who remain its
controllers.

## Test and development data

Production customer data must never be copied into staging, development environments or laptops for
testing. Use the seeded acme-demo tenant or synthetic data. If a bug can only be reproduced with a
customer's data, a Support Engineer reproduces it inside production with the audited admin tools, with
the customer's permission recorded in the ticket.

## Disposal

- Delete data when it is no longer needed, following the retention periods set by its owner.
- Laptops and disks are wiped by IT with a certified method before reuse or recycling.
- Paper with Confidential information goes into the locked shredding bins in each office.

## Reporting mistakes

If Confidential or Restricted data was sent to the wrong person, shared too widely or stored in the
wrong place, report it straight away to the security on-call with /beacon page security. Early reports
often mean we can contain the problem before it becomes a breach. The security incident response policy
describes what happens next.
""",
    "security/security-incident-response.docx": """\
# Security incident response policy

Owner: Security Engineering (Priya Ramaswamy-Holt, Head of Security) with the Data Protection Officer
(Orla McGivney) and Legal. Last reviewed: February 2025.

A security incident is any event that threatens the confidentiality, integrity or availability of our
data or systems: unauthorised access, malware, leaked credentials, data sent to the wrong place, a lost
unencrypted device, a supplier breach that affects us. This policy adds the security-specific steps to
the general incident response runbook. Where the two differ for a security incident, this policy wins.

## Reporting

Report anything suspicious immediately. You do not need to be sure.

- In Slack: /beacon page security, which pages the security on-call 24/7.
- By email: security@quillfeather.example.
- By phone, if Slack and email are unavailable: the IT desk on +44 113 496 0720, which will reach the
  security on-call.

Do not investigate on your own, do not delete anything, and do not tell the suspected attacker, customer
or supplier before Security has advised you.

## Severity

| Severity | Description | Examples | Response |
| --- | --- | --- | --- |
| Critical | Confirmed access to Restricted data or customer personal data by an unauthorised party, or
  an attacker active in production | Exfiltration of invoices from a tenant; stolen production
  credentials used | Security on-call and Head of Security immediately; SEV1 declared; DPO informed
  within 1 hour |
| High | Likely exposure of Confidential data, or a compromised employee account | Phished Okta session;
  customer data emailed to the wrong customer | Security on-call immediately; DPO informed the same day
  |
| Medium | A security control failed without known exposure | Laptop found with encryption off; malware
  blocked after execution | Handled within one working day |
| Low | Suspicious activity with no impact | Phishing email reported and not clicked | Handled within
  five working days |

## Roles

- Security incident lead: the security on-call, who can hand over to a more senior member of Security
  Engineering. They direct the technical response and decide the severity.
- Incident commander: for Critical incidents, also a SEV1 in the engineering process, with an IC from
  the usual pool who coordinates engineering work.
- Data Protection Officer: decides whether a personal data breach has occurred and whether regulators
  and individuals must be told.
- Legal: advises on contracts, law enforcement and privilege. Documents prepared for Legal are marked
  "Privileged and confidential: prepared for legal advice".
- Communications: only the Head of Security, the DPO, the CEO or people they name speak to customers,
  regulators, press or police about the incident.

## Phases

### Contain

Stop the damage first: disable accounts, revoke tokens and keys, isolate hosts, block IP addresses, take
the affected feature offline. Containment decisions that affect customers are agreed with the incident
commander.

### Preserve evidence

Before changing a compromised system, take snapshots of disks and memory where possible and copy the
relevant logs to the evidence bucket, which is write-once. Record who collected what and when, so the
chain of custody holds if the evidence is ever needed in court.

### Eradicate and recover

Remove the attacker's access and the cause, rebuild affected systems from known-good images rather than
cleaning them, rotate every secret the attacker may have seen, and watch closely for their return for at
least 30 days.

### Review

A post-incident review takes place within 10 working days of closing a Critical or High incident. It
follows the blameless postmortem format; some details may be kept in a restricted appendix.

## Personal data breaches

### Regulators

If a breach of personal data for which Quillfeather is the controller is likely to result in a risk to
people's rights and freedoms, the DPO notifies the regulator within 72 hours of Quillfeather becoming
aware of it: the Information Commissioner's Office (ICO) in the UK, and the CNPD in Portugal for data
handled by our Lisbon entity. For Canadian personal data, the DPO notifies the Office of the Privacy
Commissioner of Canada as soon as feasible when there is a real risk of significant harm.

### Customers

For customer data in Ledgerloom, Quillfeather is a processor and our customers are the controllers. Our
contracts commit us to notify affected customers without undue delay, and at the latest within 48 hours
of confirming a breach, so that they can meet their own 72-hour obligations. The notification goes to
each tenant's registered security contact, and the customer's CSM follows up.

### Individuals

Where the law requires individuals to be told and we are the controller, the DPO approves the wording,
which explains in plain language what happened, what data was involved and what people can do.

## Records

Every security incident, including Low ones and those that turn out not to be breaches, is recorded in
the security incident register with its timeline, decisions and the DPO's assessment. The register is
reviewed by the leadership team every quarter and by our auditors every year.
""",
    "people/benefits-overview.pdf": """\
# Benefits overview

Owner: People team (Beatrix Nwosu, Head of People). Applies to permanent employees; contractors are not
eligible. Last reviewed: January 2025.

This overview summarises the benefits Quillfeather provides in each of our three countries. Benefits
differ between offices because healthcare systems, tax rules and local expectations differ, but we aim
for the same overall value everywhere. Full terms are in each provider's documents in the Hearth
"Benefits" tab, and the provider's terms win if anything here disagrees with them.

Leave, sick pay, parental leave, the learning budget and on-call pay have their own policies and are not
repeated here.

## Benefits in every office

- Employee assistance programme: Harbourline, free and confidential, for you and your household (see the
  sick leave policy).
- Eye tests and a contribution towards glasses for screen use.
- Company laptop and phone where your role needs one, and the home office allowance for hybrid and
  remote employees.
- An annual company offsite, and team gatherings twice a year.
- A wellbeing allowance of £40 a month in Leeds, €45 in Lisbon and CA$70 in Toronto, paid through
  payroll and taxed as income, to spend on whatever keeps you well: a gym, a sports club, therapy, a
  bicycle repair.

## Leeds (United Kingdom)

### Pension

You are enrolled in the company pension scheme from your first day. Quillfeather contributes 6% of your
salary when you contribute at least 4%. If you contribute less, the company matches your contribution,
with a minimum company contribution of 3%. Contributions are made through salary sacrifice, which saves
you and the company National Insurance; you can opt out of salary sacrifice in Hearth.

### Private medical insurance

Private medical insurance with Meridian Health covers you from your first day, and you can add your
partner and children at no cost to you. The cover is a taxable benefit, which appears on your P11D.

### Life assurance and income protection

- Life assurance pays four times your annual salary to the people you nominate.
- Income protection pays 75% of your salary, after 26 weeks of absence through long-term illness or
  injury, until you return to work or reach state pension age.

### Other UK benefits

- Cycle to work scheme, up to £2,500.
- Electric car salary sacrifice scheme, available after probation.
- Season ticket loan, interest-free, repaid over 10 months.

## Lisbon (Portugal)

### Health insurance

Health insurance with Médilar covers you and your family (partner and children), including dental and
optical, from your first day. The company pays the full premium.

### Meal allowance

A meal allowance of €10.20 per working day is paid onto a meal card, in line with the tax-free limit for
meal cards.

### Life insurance and retirement

- Life insurance paying three times your annual salary.
- Quillfeather contributes 3% of your salary to a retirement savings plan (PPR) of your choice from the
  providers listed in Hearth, after probation.

### Other Portugal benefits

- A monthly public transport pass (Navegante) paid by the company, or a parking space at the Alcântara
  office for those who need one.
- Portuguese language lessons for colleagues who moved to Portugal, on top of the learning budget.

## Toronto (Canada)

### Health and dental

Extended health and dental coverage through the Meridian group plan for you and your dependants, with
premiums paid 100% by Quillfeather. It includes paramedical practitioners (physiotherapy, massage,
psychology) up to CA$1,500 a year per person.

### Retirement savings

Group RRSP with company matching: Quillfeather matches your contributions up to 4% of your salary, from
your first day.

### Life and disability insurance

- Life insurance of three times your annual salary.
- Long-term disability insurance paying 66.7% of your salary after 26 weeks of absence.

### Other Canada benefits

- A monthly TTC pass reimbursed through payroll.
- A health spending account of CA$500 a year for costs the group plan does not cover.

## When benefits start and end

Most benefits start on your first day; the exceptions are marked above. Benefits end on your last day of
employment, except that health cover in Portugal and Canada continues to the end of that month. Changes
to your family situation (a new partner, a birth or adoption) must be reported in Hearth within 30 days
for dependants to be added.

## Questions

Ask in the people-help channel, or book a slot with the People team's benefits lead through Hearth.
""",
    "people/parental-leave.docx": """\
# Parental leave policy

Owner: People team (Beatrix Nwosu, Head of People). Applies to all employees in Leeds, Lisbon and
Toronto. Last reviewed: March 2025.

Becoming a parent is one of the biggest changes in anyone's life. This policy gives every parent at
Quillfeather generous paid time with their child, whatever their gender and however their family is
formed, and support when they come back. It sits on top of the law in each country: where the law gives
you more, you get the law.

## What you get

| Leave | Full pay | Further leave | When it can be taken |
| --- | --- | --- | --- |
| Birthing parent | 26 weeks | Up to 26 more weeks (statutory pay where the law provides it, otherwise
  unpaid) | From up to 11 weeks before the due date |
| Non-birthing parent (partner, co-parent) | 12 weeks | Statutory leave where the law provides it | Any
  time in the 12 months after the birth, in up to three blocks |
| Primary adopter or parent through surrogacy | 26 weeks | Up to 26 more weeks as above | From the
  placement or birth |
| Secondary adopter or parent through surrogacy | 12 weeks | Statutory leave where the law provides it |
  In the 12 months after placement or birth, in up to three blocks |

Full pay means your normal base salary. Where the state pays a benefit (statutory maternity or paternity
pay in the UK, the Social Security parental allowance in Portugal, Employment Insurance benefits in
Canada), Quillfeather tops it up so that you receive your full salary for the full-pay weeks. You must
claim the state benefit for the top-up to work; the People team helps with the forms.

## Who is eligible

Enhanced pay (the full-pay weeks above) applies if you have completed 6 months of continuous service by
the week your baby is due, or by the week you are matched with a child for adoption. If you have less
service, you receive the statutory leave and pay in your country, and the People team will explain
exactly what that is.

## Telling us

- Tell your manager and the People team as early as you feel comfortable. In the UK, the legal deadline
  for the birthing parent is the 15th week before the due date.
- Book the leave in Hearth with the expected dates; you can change them later with four weeks' notice.
- You and your manager agree how your work will be covered. Cover is the company's job, not yours: do
  not work extra hours beforehand to make up for your absence.

## During your leave

- Your benefits continue, including pension contributions, health cover and the accrual of annual leave.
- You may work up to 10 keeping-in-touch days, paid at your normal daily rate, if you want to and your
  manager agrees. They are never required.
- You will not be contacted about work except for things you asked to hear about, such as the
  performance review outcome or a reorganisation affecting your role.
- If you are due a pay review during your leave, it happens as normal.

## Antenatal and adoption appointments

Both parents get paid time off for antenatal appointments, classes and adoption meetings. Tell your
manager and add them to your calendar; they are not booked as leave.

## Pregnancy loss

If you or your partner experience a miscarriage, stillbirth or a failed round of fertility treatment,
you can take two weeks of paid leave, and more as sick leave if you need it. You do not need to explain
details to your manager; tell the People team, who will handle it discreetly.

## Coming back

- You return to the same role, or an equivalent one if the law allows and the role changed while you
  were away.
- A phased return: for your first 4 weeks back, you can work 80% of your hours on full pay.
- Flexible working requests from returning parents (part-time, compressed hours, different hours) are
  considered seriously and answered within four weeks.
- If you leave Quillfeather after returning, you never have to repay any of the enhanced pay.

## Fertility treatment

Employees going through fertility treatment, and their partners, can take up to five days of paid leave
a year for appointments, booked as "Fertility treatment" in Hearth.
""",
    "people/performance-reviews.docx": """\
# Performance reviews and promotions

Owner: People team with the leadership team. Applies to all employees who have passed probation. Last
reviewed: February 2025.

Reviews at Quillfeather are meant to be useful: a regular, honest conversation about your impact, your
growth and what comes next. Nothing in a review should be a surprise, because feedback happens all year
in one-to-ones. This page describes the two review cycles, the ratings, calibration and how promotions
work.

## Two cycles a year

We run two cycles. Both use the Reviews module in Hearth.

### April cycle (mid-year)

The April cycle is a development conversation. There is no rating and no pay change.

| Step | Dates |
| --- | --- |
| Self-review open | 1 to 15 April |
| Peer feedback | 1 to 18 April |
| Manager review written | by 30 April |
| Conversations held | by 15 May |

### October cycle (full-year)

The October cycle includes a rating, calibration and decisions on pay and promotion.

| Step | Dates |
| --- | --- |
| Self-review open | 1 to 15 October |
| Peer feedback | 1 to 18 October |
| Manager review and proposed rating | by 31 October |
| Calibration sessions | first two weeks of November |
| Conversations held, outcomes shared | by 30 November |
| Pay changes effective | 1 January |

Employees who joined after 1 August take part in the October cycle without a rating; their first rated
review is the following October.

## Peer feedback

You choose three to five colleagues to give feedback, and agree the list with your manager, who may add
one name. Feedback answers two questions: what this person should keep doing, and what would make them
more effective. Peer feedback is shared with you by your manager, summarised and without names.

## Ratings

Ratings describe the impact of your work over the year, for your level, not your effort or your
potential.

| Rating | Meaning |
| --- | --- |
| Exceptional impact | Far beyond what is expected at your level; rare by design |
| Strong impact | Consistently above expectations for your level |
| Solid impact | Fully meets the high bar of your level; most people, most years |
| Developing | Meets some expectations; clear areas to grow, with support |
| Not yet meeting expectations | Significant gaps; leads to a written development plan |

There is no forced distribution. Calibration makes sure the same rating means the same thing in
different teams.

## Calibration

Managers in each department meet with their department head and a People partner to compare proposed
ratings and promotion cases. Managers present evidence, not adjectives. Ratings may change in
calibration; when they do, your manager explains why in your conversation.

## Promotions

- Promotions are decided in the October cycle only, with the new level and pay effective from 1 January.
- Your manager writes a promotion case against the career framework for the next level, with examples
  from at least the last six months.
- Promotion cases are reviewed in calibration and approved by the department head; promotions to staff
  level or to director need the leadership team.
- Out-of-cycle promotions are possible only for a change of role, such as moving into management, and
  need the VP of the department and the People team.

## Pay

Pay changes follow from the October cycle and the salary bands for your level and location. Bands are
reviewed every year against market data. Your manager will tell you your band and where you sit in it.

## If you disagree

Talk to your manager first. If that does not resolve it, you can ask the People team for a review of
your rating by your manager's manager within 20 working days of your conversation.
""",
    "people/travel.pdf": """\
# Business travel policy

Owner: Finance (Henrik Adebayo-Strand, Finance Director) with the People team and Security Engineering.
Applies to all employees and contractors travelling at Quillfeather's expense. Last reviewed: February
2025.

Travel is sometimes the best way to build a relationship with a customer or a colleague, and it is
always expensive, tiring and carbon-heavy. Travel when it matters, book sensibly, and look after
yourself while you are away. This policy covers approval, booking, flights, trains, hotels and what to
do when something goes wrong. What you may spend on hotels and meals is not repeated here: the nightly
hotel caps and daily meal limits for each city are in the expense limits table
(people/expense-limits.csv).

## Before you book: approval

- Domestic trips (within the country of your contract) need your manager's approval, given in Spendlog
  Travel when you book.
- International trips need your manager's approval before booking, with a one-line reason. Trips that
  cost more than £3,000 in total also need your department head.
- Travel to a country on the high-risk list maintained by Security Engineering needs Security approval
  as well, requested in Gatehouse at least three weeks ahead. Security may require a loaner laptop and a
  check-in plan.
- Visits to customers are agreed with the customer's CSM or account owner first, so the customer hears
  from one voice.

## Booking

Book all flights, trains and hotels through Spendlog Travel, our booking tool. Bookings made there are
paid centrally, appear in our duty-of-care tracking, and are covered by our travel insurance
automatically. If you book elsewhere because it is genuinely cheaper, keep the evidence and tell
Finance; you will not be covered by the tracking until you forward the itinerary to the travel desk
address shown in Spendlog.

Book at least 14 days ahead whenever you can. Last-minute bookings are sometimes unavoidable, but a
pattern of them will prompt a conversation.

## Flights

- Economy class for flights with a scheduled duration under 6 hours.
- Premium economy for flights of 6 hours or more, for example Leeds or London to Toronto.
- Business class is not booked, except when the People team approves it for a medical reason.
- Choose the cheapest reasonable fare: a direct flight is reasonable, a connection that saves £50 and
  adds four hours is not.
- Checked bags, seat selection on long-haul flights and airport rail transfers are fine to book.

## Trains and ground transport

- Take the train rather than flying when the journey is under 5 hours, for example Leeds to London,
  London to Paris, or Lisbon to Porto.
- Standard class by default. First class is allowed when it costs no more than standard class on the
  same train.
- Use public transport from stations and airports where practical. Taxis follow the rules in the expense
  limits table.
- Hire cars need your manager's approval; choose a small car and take the insurance offered by Spendlog
  Travel, not the rental desk's.

## Hotels

- Stay within the nightly cap for the destination in the expense limits table. Spendlog Travel shows the
  cap when you search and flags hotels above it.
- If no suitable hotel is available within the cap, for example during a large conference, your manager
  can approve a higher rate in advance in Spendlog Travel. Do not pay the difference yourself to get
  around the rule.
- Staying an extra Saturday night is fine when it makes the total trip cheaper.
- You may keep loyalty points from hotels and airlines, but they must not influence which hotel or
  airline you choose.

## Meals and incidentals

Meals while travelling are reimbursed at actual cost up to the daily limits in the expense limits table;
there is no flat daily allowance. Keep itemised receipts and claim in Spendlog. Breakfast included in
the room rate counts towards the hotel, not the meal limit.

## Time and wellbeing

- Long-haul travel is tiring. After an overnight flight you are not expected to go straight into a full
  working day.
- If a trip requires you to travel on a weekend or a public holiday, you may take the same amount of
  time off in lieu within four weeks of returning. Record it in Hearth.
- Nobody is required to travel. If travel is difficult for you for personal reasons, tell your manager
  or the People team and we will find another way.

## Insurance and emergencies

All business trips booked through Spendlog Travel are covered by our corporate travel insurance with
Meridian Assure, policy number QF-TRV-55102, including medical treatment, repatriation, lost luggage and
cancellation for business reasons. The 24-hour emergency assistance line is +44 20 7946 0811. Save it in
your phone before you leave.

If something goes wrong while you travel, such as illness, an accident, theft or unrest:

1. Get safe first, then call the emergency assistance line.
2. Tell your manager as soon as you can.
3. If a company laptop or phone is lost or stolen, follow the lost device rules in the laptop and device
  security standard.

## Visas and documents

The People team helps with visa invitation letters, and visa fees are paid by the company. Your passport
must be valid for at least six months after your return date; renewing it is your own responsibility and
expense.

## Sustainability

We report our travel emissions every year. Prefer video calls when a trip would be for one meeting,
combine trips where possible, and choose trains over short flights. Spendlog Travel shows the estimated
emissions of each option.
""",
    "product/driftwatch-spec.docx": """\
# Driftwatch: spend anomaly detection

Product specification. Owner: Anneke Vos (Product Manager) with the Insights team (Greta Solberg,
engineering manager). Status: approved for general availability; launch date in the roadmap. Last
updated: April 2025.

## Summary

Driftwatch watches every invoice and every supplier change in Ledgerloom and raises an alert when
something looks wrong: an invoice that has already been paid, a supplier whose bank details just
changed, an amount far outside what this supplier normally charges. It aims to stop duplicate payments
and invoice fraud before money leaves the customer's bank, with alerts that are rare enough to be
trusted.

Driftwatch runs in the driftwatch-scorer service, which consumes the same invoice events as Matchbook
and the supplier changes pulled in by Ledgerloom Connect.

## Who it is for

- Accounts-payable clerks, who see alerts on the invoice and decide.
- Financial controllers, who set the rules and review the weekly summary.
- Auditors, who want evidence that controls against duplicate and fraudulent payments exist and work.

## Alert types

| Alert | Triggered when | Severity | Effect |
| --- | --- | --- | --- |
| Duplicate invoice | Same supplier and same invoice number, or same supplier with an amount within 0.5%
  and an invoice date within 30 days of an earlier invoice | High | The invoice is put On hold until a
  user confirms it is not a duplicate |
| Bank details change | The supplier's bank account changed in the 30 days before the invoice is due to
  be paid | High | Payment export is held until a second user confirms the change by calling the
  supplier on a known number |
| Unusual amount | The amount has a robust z-score above 3.5 against the supplier's previous 12 months,
  with at least 6 earlier invoices | Medium | Alert shown on the invoice; approval continues |
| Off-contract spend (beta) | The supplier has no active contract, or the price is above the contracted
  rate | Low | Alert shown; weekly summary |

Every alert explains itself: what was compared, with what, and why it was flagged. For an unusual
amount, the alert shows the supplier's median invoice amount and the number of invoices considered.

## Quality bar

The launch criterion is a false-positive rate under 3% of alerts across all alert types. False positives
are measured from users' "not a problem" decisions, sampled and reviewed weekly by the Insights team. A
customer can switch off any alert type except duplicate invoice detection, which is always on for
tenants with Driftwatch.

## Timing

Alerts are raised within 15 minutes of an invoice being captured, and always before the invoice reaches
its first approver, so that no one approves an invoice without seeing its alerts. Bank details change
alerts are raised within 15 minutes of Connect pulling the change from the ERP.

## The model

- The unusual amount check uses a robust z-score: the distance from the supplier's median in units of
  median absolute deviation. It is simple, explainable, and works per supplier without training data
  from other customers.
- Duplicate detection combines exact matches on invoice number with fuzzy matches on amount, date and
  the normalised invoice number (ignoring spaces, dashes and leading zeros).
- No customer's data is used to score another customer's invoices.

## Configuration

Tenant administrators can, in Admin > Driftwatch:

- switch alert types on or off (except duplicate invoice detection);
- change the unusual amount threshold between 2.5 and 5.0;
- exclude suppliers, for example utilities with seasonal bills;
- choose who receives the weekly summary email.

## Plans

Driftwatch is included in the Enterprise plan and offered as an add-on to Growth; the price is in the
plans and limits table. It is not available on Starter.

## Metrics

- Alerts per 1,000 invoices, by type and tenant.
- False-positive rate by type.
- Confirmed catches and their total value, reported to customers in the weekly summary.

## Risks

- Alert fatigue: if customers learn to click through alerts, Driftwatch becomes worse than useless. The
  quality bar exists for this reason.
- Fraudsters adapt: bank details fraud moves to new patterns. The Insights team reviews confirmed fraud
  cases monthly with Support.
""",
    "product/pennant-approvals-spec.pdf": """\
# Pennant: invoice approval workflows

Product specification. Owner: Product (Soraya Lindqvist) with the Workflow team (Clara Bettencourt,
engineering manager). Status: live; this revision describes the behaviour shipped with approvals in
Microsoft Teams in February 2025.

## Summary

Pennant routes each invoice to the right people for approval, reminds them, lets them approve wherever
they work, and keeps an audit trail that satisfies external auditors. Finance teams describe their
approval policy once, as rules, and Pennant applies it to every invoice. Pennant runs in the
approvals-svc service, with notifications sent by notify-svc.

## Problems we are solving

- Approval policies live in people's heads and in spreadsheets, so invoices go to the wrong approver and
  sit there.
- Approvers do not log into finance tools; invoices wait for weeks and suppliers chase for payment.
- Auditors ask who approved what, and when, and finance teams spend days finding out.

## Approval chains

An approval chain is the ordered list of steps an invoice must pass. Each step names one approver, a
group (any one member approves), or a role resolved from the ERP data, such as "budget owner of the cost
centre".

- A chain has at most 6 steps. The number of steps available depends on the customer's plan, as listed
  in the plans and limits table.
- Steps run in order. A step may require all members of a group instead of any one, for example for
  board-level spend.
- Invoices that were "Matched" by Matchbook can skip the chain entirely if the tenant enables
  auto-approval of matched invoices under a chosen amount.

## Rules

Administrators build chains with rules evaluated top to bottom; the first rule that matches an invoice
decides its chain. Rules can test:

- the invoice amount, in the tenant currency, with ranges such as "over 10,000";
- the cost centre, department, project or GL account on the invoice lines;
- the supplier, or a supplier category;
- the entity or subsidiary;
- whether the invoice has a purchase order, and its Matchbook status.

A default rule at the bottom catches every invoice that no other rule matched, so that no invoice is
ever left without a chain.

## Where approvers approve

Approvers can approve, reject or ask a question from:

- the Ledgerloom web app, including the mobile-friendly approval inbox;
- email, using signed one-click links that expire after 7 days and require sign-in for amounts above a
  tenant-defined threshold;
- Slack and Microsoft Teams, through the Ledgerloom app, with the invoice image and coding shown in the
  message;
- bulk approval in the web app, up to 50 invoices at a time, for approvers who handle many small
  invoices.

Every channel records the same audit information.

## Reminders and escalation

Invoices must not get stuck.

- If an approver has not acted after 48 hours, Pennant sends a reminder in the channel the approver used
  last.
- After 96 hours, the invoice is escalated to the approver's manager (from the tenant's user directory
  or SCIM data), who can approve or reassign it.
- Weekends and the public holidays of the tenant's country are not counted in these timings.
- Administrators can change both timings per chain, between 24 hours and 14 days.

## Delegation

Approvers going on leave set a delegate in their profile for a date range of up to 30 days. During that
time their approvals go to the delegate, and the audit trail shows both names. Administrators can set a
delegation for someone who forgot. A delegate cannot delegate further.

## Segregation of duties

Pennant enforces basic segregation of duties, whatever the rules say:

- the person who submitted or coded an invoice cannot approve it;
- the same person cannot approve twice in one chain, even through a delegation or a group;
- a user who changed a supplier's bank details in the last 30 days cannot approve that supplier's
  invoices.

When a rule would route an invoice to someone blocked by these checks, Pennant skips to the next
eligible person and records why.

## Audit trail

Every action on an invoice, including views by approvers, is recorded with the user, time, channel and
IP address, and cannot be edited. Auditors can be given a read-only auditor role. How long the trail
stays visible in the app depends on the plan's audit log retention; exports are available at any time.

## Performance and reliability

- An approval made in any channel is visible everywhere within 5 seconds.
- Approval events are written through a transactional outbox so that the next approver is always
  notified, even if a service restarts mid-request.
- If notify-svc is degraded, approvals still work in the web app, and reminders are sent late rather
  than lost.

## Metrics

- Median and 90th percentile time from invoice ready to final approval, per tenant.
- Share of approvals made outside the web app (Slack, Teams, email).
- Escalations per 100 invoices, as a signal of badly designed chains.

## Out of scope for this revision

- Approval of purchase requests before a PO exists; that remains in the customer's ERP.
- Conditional steps based on the content of attachments.
""",
    "support/customer-onboarding-playbook.pdf": """\
# Customer onboarding playbook

Owner: Customer Success, part of the Support organisation led by Callum Ferreira (Head of Support). For
Implementation Managers, Customer Success Managers and Support Engineers. Last reviewed: March 2025.

A customer's first weeks with Ledgerloom decide whether they stay for years. This playbook describes how
we take a new customer from signed contract to live and healthy, for each plan, and how we hand over to
the team that looks after them afterwards.

## Onboarding by plan

| Plan | Onboarding model | Typical length | Led by |
| --- | --- | --- | --- |
| Starter | Self-serve: in-app setup guide and a weekly group webinar | 1 to 2 weeks | The customer,
  with Support |
| Growth | Guided: two 60-minute calls with an Implementation Manager, plus email support | 2 to 4 weeks
  | Implementation Manager |
| Enterprise | Full implementation project with a named Implementation Manager | 6 weeks standard |
  Implementation Manager, then the CSM |

## Enterprise implementation, week by week

### Week 1: kickoff

- Kickoff call with the customer's project lead, finance lead and IT contact. Agree scope, pilot group
  and go-live date.
- Share the implementation workbook: entities, currencies, approval policy, ERP details, SSO details.
- Create the tenant and invite the customer's administrators.

### Weeks 2 and 3: configure

- Connect the ERP through Ledgerloom Connect and run the first full import of suppliers, purchase orders
  and coding.
- Set up single sign-on with the customer's identity provider and, for Enterprise, SCIM provisioning.
- Build the approval chains in Pennant from the workbook, and set Matchbook tolerances.
- If the customer has bought Driftwatch, switch it on in monitoring mode: alerts are recorded but not
  shown, to check the alert volume before go-live.

### Weeks 4 and 5: pilot

- One business unit or entity processes real invoices in Ledgerloom for two weeks, alongside its old
  process.
- Review the pilot every few days: extraction accuracy, match rate, exceptions, approval times.
- The pilot succeeds when at least 70% of PO-backed invoices are auto-matched and approvers are using
  Slack, Teams or email approvals without help.

### Week 6: go-live

- Switch the remaining entities on, redirect supplier invoice emails to the Ledgerloom inbox address and
  switch off the old process.
- Go-live dates are never scheduled in the last three working days of a month, when finance teams close
  their books, nor during the year-end change freeze.

## Hypercare

For 30 days after go-live the Implementation Manager stays on the account alongside Support: a weekly
check-in call, a shared Slack Connect channel if the customer wants one, and priority handling of their
tickets. Hypercare ends with a handover meeting to the CSM.

## Handover to the Customer Success Manager

The handover document records:

- the customer's goals and how we will measure them (for example, auto-match rate and time to approve);
- the configuration decisions and why they were made;
- open issues and feature requests, with their Tally links;
- the people at the customer and who decides what.

Enterprise customers have a named CSM from the kickoff onwards; the CSM joins the kickoff and the
go-live, and owns the relationship after hypercare.

## Health after go-live

The CSM watches a health score built from product usage, ticket volume and sentiment, and the auto-match
rate. A customer whose score falls into the red for two consecutive weeks gets a call from their CSM and
an account plan review.

## Common problems and how to avoid them

- ERP data quality: purchase orders closed in the ERP but still open in practice cause MB-NO-PO
  exceptions. Ask the customer to clean up open POs before the import.
- Approval chains copied from an outdated policy document: confirm the real policy with the controller
  before building chains.
- Supplier emails: some suppliers keep sending invoices to the old address for months. Set up forwarding
  rather than relying on suppliers.
- Single sign-on left until the end: start it in week 2, because the customer's IT team is usually the
  slowest dependency.

## Tools

- The implementation workbook template in the Customer Success shared drive.
- The onboarding project board in Tally, one card per customer.
- The go-live checklist, which the Implementation Manager completes and attaches to the customer's
  record.
""",
    "meetings/2025-05-20-q3-planning.docx": """\
# Q3 2025 planning and engineering leads, 20 May 2025

Chair: Dagny Halloran (VP Engineering). Present: Rafael Okonkwo-Lind (CTO), Soraya Lindqvist (Product
Director), Callum Ferreira (Head of Support), Priya Ramaswamy-Holt (Head of Security), Tomasz Brereton,
Yusuf Adeyemi-Hart, Clara Bettencourt, Noor Haddad, Piotr Wawrzyniak, Greta Solberg, Luis Monteverde,
Ben Tsakiris. Notes: Freya Lindholm.

This meeting combined the monthly engineering leads meeting with planning for the third quarter of 2025
(July to September).

## Review of Q2

- Driftwatch GA on 2 June 2025 remains on track. The launch webinar is booked for 4 June.
- Matchbook partial receipts beta: 25 tenants, auto-match rate for those tenants up from 71% to 75%.
- Sage Intacct v2 connector beta: 9 customers, no blocking issues.
- Reliability: no SEV1 since INC-2291 in January. Two SEV2s in April, both in notify-svc.
- The May failover drill on 6 May passed: writes were unavailable for 19 seconds.

## Q3 objectives and key results

| Objective | Key result | Owner |
| --- | --- | --- |
| More invoices need no human touch | Raise the average auto-match rate from 74% to 78% | Yusuf
  Adeyemi-Hart |
| More invoices need no human touch | Partial receipts generally available by 31 July | Yusuf
  Adeyemi-Hart |
| Platform stays boring | pg-core on PostgreSQL 16 by 31 August, using the 5 August drill slot | Tomasz
  Brereton |
| Suppliers help themselves | Wharf supplier portal in private beta with 10 customers by 30 September |
  Clara Bettencourt |
| Customers never wait for us | Zero missed first-response targets on Enterprise P1 tickets | Callum
  Ferreira |
| Trust is earned | All findings of the SOC 2 Type II audit closed by 15 September | Priya
  Ramaswamy-Holt |

## Decisions

1. Wharf is staffed by moving two engineers from Workflow and hiring three more. Wharf is the Workflow
  team's first priority in Q3.
2. Hiring: six engineering roles are opened in Lisbon in Q3 (three for Workflow and Wharf, two for
  Platform, one for Insights). No new engineering roles in Toronto this quarter; Toronto opens two
  Support Engineer roles to strengthen evening coverage.
3. notify-svc moves to tier 1 from 1 July, because Pennant reminders and escalations depend on it. The
  Workflow rotation already covers it; the service catalogue will be updated when the change takes
  effect.
4. The review turnaround target (first response within one working day) was met by 7 of 9 teams; Yusuf
  will report again in August.
5. The PostgreSQL 16 cutover will be announced to customers as scheduled maintenance at least 5 days
  ahead, as the SLA terms require.

## Risks

- The PostgreSQL 16 cutover and the Wharf beta both need Platform time in August. If the cutover slips
  past the August drill slot, it moves to the November drill slot rather than into September.
- Driftwatch launch may bring more Support tickets than forecast; Callum will review ticket volume two
  weeks after launch.

## Action items

| Action | Owner | Due |
| --- | --- | --- |
| Publish Q3 OKRs in the planning space | Dagny Halloran | 23 May 2025 |
| Open the six Lisbon engineering roles | Beatrix Nwosu (People), with the engineering managers | 30 May
  2025 |
| Plan notify-svc tier-1 readiness (alerts, runbook, SLO) | Clara Bettencourt | 20 June 2025 |
| Customer notice for the PostgreSQL 16 maintenance window | Callum Ferreira | 25 July 2025 |
""",
}


if __name__ == "__main__":
    sys.exit(main())
