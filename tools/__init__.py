"""Development tools of the VisAttn checkout, not part of the installed package (setup.py
packages visattn only): the scripts that train the bundled tiny networks.

    python tools/train.py --attention all          # the scene classifiers
    python tools/train_twins.py                    # the twin-scene labellers
"""
