"""Hostile code (see steal.yaml): what a researcher's step could try in the sandbox.

It cannot read the key store or the state database (they are not in its world), so it
tries the one door it has to keys, with its own job's grant: the key service's socket,
or on a compute node of a cluster the key gateway, with its job's certificate.
"""

import json
from pathlib import Path

from tre.keys.keysystems import open_master_keys
from tre.keys.kms import column_key_id
from tre.keys.masterkeys import KmsSettings


def steal(ctx):
    source = json.loads(Path("/job/input.json").read_text())["sources"]["residents"]
    wanted = column_key_id("residents", "social_care_cost_gbp")
    wrapped = None
    for material in Path("/data/residents").glob("v*/_KEY_MATERIAL_FOR_*.json"):
        for value in json.loads(material.read_text()).values():
            if isinstance(value, str) and f'"{wanted}"' in value:
                entry = json.loads(value)
                wrapped = entry.get("wrappedKEK") or entry["wrappedDEK"]
    # The job's own way to keys (as its reader would go), asked for a key its grant does
    # not name: refused by the key service, and the refusal audited.
    keys = open_master_keys(KmsSettings(**dict(source["kms"])))
    keys.unwrap_with_grant(source["token"], wanted, wrapped)
