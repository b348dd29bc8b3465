"""corrlab.instruments: see the README's Layout section."""

if __name__ != "corrlab.instruments":  # this folder put on sys.path by hand (e.g. from the checkout's root)
    raise ImportError("the package is corrlab.instruments: import corrlab.instruments, never 'instruments' (corrlab installs one top-level name)")
