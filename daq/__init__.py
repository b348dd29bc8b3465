"""corrlab.daq: see the README's Layout section."""

if __name__ != "corrlab.daq":  # this folder put on sys.path by hand (e.g. from the checkout's root)
    raise ImportError("the package is corrlab.daq: import corrlab.daq, never 'daq' (corrlab installs one top-level name)")
