"""The demo: synthetic Liverpool City Region data for `make demo`.

`tre.demo.synth` writes the source datasets and holds their descriptors; it is not
imported here so that `python -m tre.demo.synth` runs without a double import.
"""
