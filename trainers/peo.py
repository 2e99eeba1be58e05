"""`python -m trainers.peo`, kept for existing scripts: runs `paretoapp.trainers.peo`."""

from paretoapp.trainers.peo import main

if __name__ == "__main__":
    main()
