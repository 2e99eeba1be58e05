"""`python -m trainers.upo`, kept for existing scripts: runs `paretoapp.trainers.upo`."""

from paretoapp.trainers.upo import main

if __name__ == "__main__":
    main()
