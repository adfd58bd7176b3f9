"""Generate examples/customers.csv: fictional customers in several countries.

Deterministic (seeded). Numbers are built from phonenumbers' own example numbers
with the last digits varied and kept only when they validate, so they are
well-formed but belong to nobody we know. Run: python examples/generate_customers.py
"""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

# region, how many, first names, surnames; a few rows carry an explicit timezone.
COUNTRIES = {
    "US": 70,
    "GB": 30,
    "IT": 30,
    "DE": 25,
    "FR": 25,
    "ES": 20,
    "BR": 25,
    "IN": 25,
    "AU": 20,
    "JP": 15,
    "MX": 15,
    "NZ": 10,
}
FIRST = [
    "Ada",
    "Bruno",
    "Chiara",
    "Dev",
    "Elena",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jun",
    "Kofi",
    "Lena",
    "Mateo",
    "Nadia",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
]
LAST = [
    "Abara",
    "Bianchi",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Hoang",
    "Iyer",
    "Jensen",
    "Kato",
    "Lopez",
    "Moreau",
    "Novak",
    "Okafor",
    "Rossi",
    "Silva",
    "Tanaka",
]
PLANS = ["basic", "plus", "gold"]


US_AREA_CODES = ["212", "305", "312", "303", "415", "602", "808", "907"]


def fictional_number(region: str, rng: random.Random, used: set[str]) -> str:
    while True:
        number = _candidate(region, rng)
        if number not in used:
            used.add(number)
            return number


def _candidate(region: str, rng: random.Random) -> str:
    if region == "US":
        # 555-0100..0199 is reserved for fiction in North America.
        return f"+1 {rng.choice(US_AREA_CODES)}-555-{rng.randrange(100, 200):04d}"
    example = phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)
    national = str(example.national_number)
    while True:
        candidate = national[:-4] + f"{rng.randrange(10_000):04d}"
        parsed = phonenumbers.parse(f"+{example.country_code}{candidate}", None)
        if phonenumbers.is_valid_number(parsed):
            return phonenumbers.format_number(parsed, PhoneNumberFormat.INTERNATIONAL)


def rows(rng: random.Random) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    used: set[str] = set()
    for region, count in COUNTRIES.items():
        for _ in range(count):
            n = len(out) + 1
            out.append(
                {
                    "customer_id": f"cust-{n:04d}",
                    "name": rng.choice(FIRST),
                    "surname": rng.choice(LAST),
                    "email": f"customer{n:04d}@example.com",
                    "phone": fictional_number(region, rng, used),
                    "timezone": "",
                    "plan": rng.choice(PLANS),
                }
            )
    _sprinkle_real_world_mess(out, rng)
    return out


def _sprinkle_real_world_mess(out: list[dict[str, str]], rng: random.Random) -> None:
    """Some rows lack a phone, some numbers are wrong, some carry an explicit zone."""
    picks = rng.sample(range(len(out)), 15)
    for i in picks[:5]:
        out[i]["phone"] = ""
    for i in picks[5:8]:
        out[i]["phone"] = out[i]["phone"][:-5]  # too short to be valid
    for i, zone in zip(
        picks[8:],
        [
            "America/Denver",
            "Europe/Lisbon",
            "Asia/Kolkata",
            "Pacific/Chatham",
            "Australia/Lord_Howe",
            "America/Phoenix",
        ],
        strict=False,
    ):
        out[i]["timezone"] = zone
    out.append({**out[picks[14]], "name": "Same-person"})  # one duplicate, as real files have


def main(path: Path) -> None:
    data = rows(random.Random(20261122))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(data[0]))
        writer.writeheader()
        writer.writerows(data)
    print(f"wrote {len(data)} customers to {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("customers.csv"))
