"""The shipped rule packs (pure data). Each rule cites where it comes from.

Scope: the US federal rule and the states whose statutes are stricter on hours, days or
the number of calls, and the EU member states whose law sets calling days and hours
(France, Spain), where the rule fits this model (one daily range of hours, closed
weekdays, closed on public holidays, calls per rolling period). Left out, and said so in
docs/ARCHITECTURE.md: Texas (different Sunday hours: Tex. Bus. & Com. Code 301.051); the
UK (no statutory calling hours to cite; Ofcom's persistent-misuse policy is about
abandoned and silent calls, not hours) and an EU-wide default (the EU sets consent, not
hours: each member state's own law applies). France's two daily ranges (10-13 and 14-20)
do not fit one range: the pack keeps the longer afternoon one, so no call ever lands in
the 13-14 break or before 10, at the cost of the morning. A deployment adds or overrides
packs with ``DIALER_RULE_PACKS_FILE`` (see ``dialer.services.rule_packs``).

Version: the date the rule was last checked. The state rules were checked against two
secondary summaries (ClickPoint Software, "Telemarketing Calling Restrictions & Hours by
State", July 2025; Drop Cowboy, "State Calling Restrictions Guide", November 2025), not
against each statute's official text: counsel should confirm them before relying on them,
and a deployment can override any pack.
"""

from __future__ import annotations

from datetime import time
from typing import Final

from dialer.policies.rule_packs import FrequencyCap, RulePack

VERSION = "2026-12-03"
EU_VERSION = "2026-12-04"
SUNDAY = frozenset({6})
WEEKEND = frozenset({5, 6})

PACKS: Final[tuple[RulePack, ...]] = (
    RulePack(
        id="us",
        version=VERSION,
        country="US",
        subdivision=None,
        start=time(8),
        end=time(21),
        sources=("47 CFR 64.1200(c)(1) (TCPA): no solicitation before 8 a.m. or after 9 p.m.",),
    ),
    RulePack(
        id="us-fl",
        version=VERSION,
        country="US",
        subdivision="FL",
        start=time(8),
        end=time(20),
        caps=(FrequencyCap(calls=3, hours=24),),
        sources=(
            "Fla. Stat. 501.616(6)(a): 8 a.m. to 8 p.m. (Florida Telephone Solicitation Act, "
            "2021 amendment)",
            "Fla. Stat. 501.616(6)(b): no more than 3 calls from any number in 24 hours on "
            "the same subject matter",
        ),
    ),
    RulePack(
        id="us-ok",
        version=VERSION,
        country="US",
        subdivision="OK",
        start=time(8),
        end=time(20),
        caps=(FrequencyCap(calls=3, hours=24),),
        sources=(
            "Okla. Stat. tit. 15, 775C.4 (Telephone Solicitation Act of 2022): 8 a.m. to "
            "8 p.m.; no more than 3 calls in 24 hours on the same subject",
        ),
    ),
    RulePack(
        id="us-al",
        version=VERSION,
        country="US",
        subdivision="AL",
        start=time(8),
        end=time(20),
        closed_weekdays=SUNDAY,
        closed_on_holidays=True,
        sources=(
            "Ala. Admin. Code r. 770-X-8-.03 (Public Service Commission): 8 a.m. to 8 p.m.; "
            "none on Sunday or a state holiday",
        ),
    ),
    RulePack(
        id="us-la",
        version=VERSION,
        country="US",
        subdivision="LA",
        start=time(8),
        end=time(20),
        closed_weekdays=SUNDAY,
        closed_on_holidays=True,
        sources=(
            "La. R.S. 45:844.17: no calls on Sunday or a state legal holiday; "
            "8 a.m. to 8 p.m. otherwise",
        ),
    ),
    RulePack(
        id="us-ms",
        version=VERSION,
        country="US",
        subdivision="MS",
        start=time(8),
        end=time(20),
        closed_weekdays=SUNDAY,
        closed_on_holidays=True,
        sources=(
            "Miss. Code 77-3-725: 8 a.m. to 8 p.m., none on Sunday or a legal holiday "
            "(Miss. Code 3-3-7 for the holidays)",
        ),
    ),
    RulePack(
        id="us-md",
        version=VERSION,
        country="US",
        subdivision="MD",
        start=time(8),
        end=time(20),
        caps=(FrequencyCap(calls=3, hours=24),),
        sources=(
            "Md. Code, Com. Law 14-4503 (Stop the Spam Calls Act of 2023): 8 a.m. to 8 p.m.; "
            "no more than 3 calls in 24 hours on the same subject",
        ),
    ),
    RulePack(
        id="us-ma",
        version=VERSION,
        country="US",
        subdivision="MA",
        start=time(8),
        end=time(20),
        sources=("940 CMR 19.04: 8 a.m. to 8 p.m.",),
    ),
    RulePack(
        id="us-ct",
        version=VERSION,
        country="US",
        subdivision="CT",
        start=time(9),
        end=time(20),
        sources=("Conn. Gen. Stat. 42-288a (2023 amendment): 9 a.m. to 8 p.m.",),
    ),
    RulePack(
        id="us-ky",
        version=VERSION,
        country="US",
        subdivision="KY",
        start=time(10),
        end=time(21),
        sources=("KRS 367.46955(14): 10 a.m. to 9 p.m.",),
    ),
    RulePack(
        id="us-nv",
        version=VERSION,
        country="US",
        subdivision="NV",
        start=time(9),
        end=time(20),
        sources=("NRS 228.590 / secondary summaries: 9 a.m. to 8 p.m.",),
    ),
    RulePack(
        id="us-wa",
        version=VERSION,
        country="US",
        subdivision="WA",
        start=time(8),
        end=time(20),
        sources=("RCW 80.36.390(2): 8 a.m. to 8 p.m.",),
    ),
    RulePack(
        id="fr",
        version=EU_VERSION,
        country="FR",
        subdivision=None,
        start=time(14),
        end=time(20),
        closed_weekdays=WEEKEND,
        closed_on_holidays=True,
        caps=(FrequencyCap(calls=4, hours=30 * 24),),
        sources=(
            "Code de la consommation, art. D. 223-9 (Decret n. 2022-1313 du 13 octobre 2022, "
            "in force 1 March 2023): Monday to Friday, not on public holidays (Code du "
            "travail L. 3133-1), 10:00-13:00 and 14:00-20:00 in the consumer's zone; only "
            "the 14:00-20:00 range is kept (one range per day in this model)",
            "Code de la consommation, art. D. 223-9: no more than 4 calls or attempts to one "
            "consumer in 30 calendar days",
        ),
    ),
    RulePack(
        id="es",
        version=EU_VERSION,
        country="ES",
        subdivision=None,
        start=time(9),
        end=time(21),
        closed_weekdays=WEEKEND,
        closed_on_holidays=True,
        sources=(
            "Real Decreto Legislativo 1/2007 (TRLGDCU), art. 96.2, as amended by Ley 3/2014: "
            "no commercial calls before 9:00 or after 21:00, nor on public holidays or "
            "weekends",
        ),
    ),
)
