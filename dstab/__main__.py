import sys

from .cli import main

if __name__ == "__main__":  # not when multiprocessing's spawn re-imports this module in a worker (zoo census --jobs)
    sys.exit(main())
