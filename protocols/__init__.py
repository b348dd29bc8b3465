"""corrlab.protocols: see the README's Layout section."""

if __name__ != "corrlab.protocols":  # this folder put on sys.path by hand (e.g. from the checkout's root)
    raise ImportError("the package is corrlab.protocols: import corrlab.protocols, never 'protocols' (corrlab installs one top-level name)")
