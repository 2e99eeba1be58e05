"""`python -m trainers.demo`, kept for existing scripts: runs `paretoapp.trainers.demo`."""

from paretoapp.trainers.demo import main

if __name__ == "__main__":
    main()
