"""`python -m trainers.panacea`, kept for existing scripts: runs `paretoapp.trainers.panacea`."""

from paretoapp.trainers.panacea import main

if __name__ == "__main__":
    main()
