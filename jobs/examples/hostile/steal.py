"""Hostile code (see steal.yaml): what a researcher's step could try in the sandbox.

It cannot read the key store or the state database (they are not in its world), so it
tries the one door it has, the key service's socket, with its own job's grant.
"""

import json
from pathlib import Path

from tre.secured.keyclient import ServiceMasterKeys
from tre.secured.kms import column_key_id


def steal(ctx):
    token = json.loads(Path("/job/input.json").read_text())["sources"]["residents"]["token"]
    wanted = column_key_id("residents", "social_care_cost_gbp")
    wrapped = None
    for material in Path("/data/residents").glob("v*/_KEY_MATERIAL_FOR_*.json"):
        for value in json.loads(material.read_text()).values():
            if isinstance(value, str) and f'"{wanted}"' in value:
                entry = json.loads(value)
                wrapped = entry.get("wrappedKEK") or entry["wrappedDEK"]
    # Refused by the key service: the grant does not name this column's key.
    ServiceMasterKeys("/run/tre/keys.sock").unwrap_with_grant(token, wanted, wrapped)
