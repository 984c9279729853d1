from .cli import main

if __name__ == "__main__":  # guard: the image pool's worker processes re-import __main__
    raise SystemExit(main())
