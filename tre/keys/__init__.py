"""Keys: the master keys that open secured data, who may use which, and how a job asks.

    masterkeys   the key-management contract, `MasterKeys`, and the local store behind it
    keystore     0600 key files in TRE_HOME/keys (what the local master keys are kept in)
    pkcs11keys   the same contract on a PKCS#11 HSM (SoftHSM in tests)
    keyclient    the same contract over a socket to the key service (`tre.keyservice`)
    keysystems   which of the three a setting opens (`open_master_keys`), one per process
    grants       signed, expiring, revocable key grants: which master keys a job may use
    kms          pyarrow's KMS layer over the master keys; key ids; rotation
    tls_ca       the home's CA: certificates for the key gateway and each job

Entry points: `keysystems.open_master_keys` with a `masterkeys.KmsSettings` (never an
implementation by name: `masterkeys` imports none of them), `grants` to make and check a
grant, `kms` for everything pyarrow needs. `keyclient` is the key service's protocol
(its process code, and a few checks that keys are the service's, use its names) and
`tls_ca` is for whoever issues certificates (the service layer, the gateway).

The secured data layer (`tre.secured`) encrypts and reads through these; this package
imports nothing of it, nor of any front end (tests/test_architecture.py). Modules are
imported directly (`from tre.keys.kms import column_key_id`) and this file imports
nothing, so a `tre` command that needs no keys loads neither cryptography nor pyarrow.
See docs/keys.md.
"""
