"""A small fixture corpus: a few documents with distinctive facts for keyword and paraphrase questions."""

from __future__ import annotations

from pathlib import Path

DOCS: dict[str, str] = {
    "engineering/vpn.md": """# VPN access

## Resetting your VPN password
If you forgot your VPN password, open the Gatekeeper portal and choose "Reset credentials".
The reset link expires after 20 minutes. Contact the IT helpdesk on channel #it-help if it fails.

## Supported clients
We support the WireGuard client on macOS, Windows and Linux.
""",
    "people/vacation.md": """# Vacation policy

## Annual leave
Every employee gets 27 days of paid annual leave per calendar year.
Unused days can be carried over until the end of March of the following year.

## Booking leave
Book leave in the HR tool at least two weeks in advance for trips longer than five days.
""",
    "engineering/deploys.md": """# Deploying to production

## Deploy windows
Production deploys happen Monday to Thursday between 10:00 and 16:00 UTC.
No deploys on Fridays unless the incident commander approves a hotfix.

## Rollback
Run `shipit rollback --to previous` to restore the previous release within 5 minutes.
""",
    "people/expenses.txt": """Expense policy

Meals while travelling are reimbursed up to 60 euros per day.
Submit receipts in the Ledgerly app within 30 days of the purchase.
Taxi rides are covered when public transport is unavailable after 22:00.
""",
    "security/laptops.html": """<html><head><title>Laptop security</title></head><body>
<h1>Laptop security</h1>
<h2>Disk encryption</h2><p>All company laptops must use full-disk encryption (FileVault or BitLocker).</p>
<h2>Lost devices</h2><p>Report a lost or stolen laptop to security@northwind.example within one hour.</p>
</body></html>
""",
}

# (question, expected document): keyword lookups and paraphrases sharing few words with the text.
KEYWORD_QUESTIONS = [
    ("Gatekeeper reset credentials link", "engineering/vpn.md"),
    ("shipit rollback command", "engineering/deploys.md"),
    ("Ledgerly receipts", "people/expenses.txt"),
    ("FileVault BitLocker encryption", "security/laptops.html"),
]
PARAPHRASE_QUESTIONS = [
    ("how many days off do I get each year", "people/vacation.md"),
    ("what do I do when I can't remember my password for the private network", "engineering/vpn.md"),
    ("my computer was stolen, who do I tell", "security/laptops.html"),
    ("how much can I spend on food during a business trip", "people/expenses.txt"),
    ("when am I allowed to ship code to customers", "engineering/deploys.md"),
]


def write_corpus(root: Path) -> None:
    for rel, text in DOCS.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
