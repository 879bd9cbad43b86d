"""Entry point of the policy pack: `pulumi preview --policy-pack policy`. Constructing PolicyPack starts the
analyzer server and blocks, so nothing imports this module; tests use policy.rules and policy.pack."""

import sys
from pathlib import Path

# The language host runs this file with policy/ on sys.path; the rules are imported as the `policy` package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from policy.pack import PACK_NAME, policies

PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=policies())
