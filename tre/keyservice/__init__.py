"""The key service: master keys, the grant-signing key and the HSM PIN in their own process.

`server.py` is the service (who may ask what, and what it records), `process.py`
starts and stops it, `python -m tre.keyservice` runs it. Its client is
`tre.keys.keyclient`, so the engines reach it through `tre.keys` alone.
"""
